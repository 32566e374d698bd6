// mallorn-agent against the real mallornd on loopback, real model pairs, real processes: a fleet
// update, health-check rollback, a bad signature, a tampered patch, and SIGKILL at random instants.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/signature.hpp"
#include "support/daemon_process.hpp"
#include "support/model_store_fixture.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

struct fleet_rig {
  temp_dir dir{"agent"};
  stored_pair pair;
  std::unique_ptr<daemon_process> server;
  explicit fleet_rig(const std::string& name = "coral-mnv2-quant_2020-to-2021a") {
    std::filesystem::create_directories(dir / "models");
    pair = make_store(dir / "models", {name}).at(0);
    auto keys = core::ed25519_generate();
    EXPECT_TRUE(core::write_file_atomic(dir / "release.key", keys->private_key).ok());
    EXPECT_TRUE(core::write_file_atomic(dir / "release.pub", keys->public_key).ok());
    auto other = core::ed25519_generate();
    EXPECT_TRUE(core::write_file_atomic(dir / "other.pub", other->public_key).ok());
    std::ofstream(dir / "token") << "agent-test-admin-token-123\n";
    server = std::make_unique<daemon_process>(
        dir.path(), std::vector<std::string>{"--models", (dir / "models").string(), "--data", (dir / "data").string(),
                                             "--level", "3", "--no-neural", "--rate-limit", "0", "--signing-key",
                                             (dir / "release.key").string(), "--admin-token-file", (dir / "token").string()});
  }
  // A device: its own state directory and config, provisioned with the old release.
  std::filesystem::path device(const std::string& id, const std::string& pubkey = "release.pub",
                               const std::string& health = "test -s \"$MALLORN_MODEL\"") {
    const auto home = dir / id;
    std::filesystem::create_directories(home);
    json cfg = {{"server", "http://127.0.0.1:" + std::to_string(server->port())},
                {"device_id", id},
                {"public_key", (dir / pubkey).string()},
                {"http_timeout", 10},
                {"models", {{{"name", pair.model}, {"dir", (home / "slots").string()}, {"file", "model.tflite"},
                             {"health_check", {"sh", "-c", health}}, {"health_timeout", 10}}}}};
    std::ofstream(home / "agent.json") << cfg.dump(2);
    auto r = run_shell(agent() + " --config " + (home / "agent.json").string() + " install " + pair.model + " " +
                       pair.v1.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return home;
  }
  static std::string agent() { return (bin_dir() / "mallorn-agent").string(); }
  static shell_result check_once(const std::filesystem::path& home) {
    return run_shell(agent() + " --config " + (home / "agent.json").string() + " check-once --json 2>" +
                     (home / "agent.log").string());
  }
  // check-once until the server has the patch ready (exit 3 = pending).
  static shell_result until_done(const std::filesystem::path& home) {
    shell_result r;
    for (int i = 0; i < 200; ++i) {
      r = check_once(home);
      if (r.exit_code != 3) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return r;
  }
  json devices() {
    auto r = run_shell("curl -s -H 'Authorization: Bearer agent-test-admin-token-123' " + server->url("/admin/devices"));
    return json::parse(r.out)["devices"];
  }
};

std::filesystem::path current_model(const std::filesystem::path& home) { return home / "slots" / "current" / "model.tflite"; }

}  // namespace

TEST(Agent, FleetUpdatesFromV1ToV2AndReports) {
  fleet_rig rig;
  ASSERT_TRUE(rig.server->listening()) << rig.server->log();
  std::vector<std::filesystem::path> homes;
  for (int i = 0; i < 8; ++i) homes.push_back(rig.device("dev-" + std::to_string(i)));
  std::vector<std::thread> fleet;
  std::vector<int> codes(homes.size(), -1);
  for (std::size_t i = 0; i < homes.size(); ++i)
    fleet.emplace_back([&, i] { codes[i] = fleet_rig::until_done(homes[i]).exit_code; });
  for (auto& t : fleet) t.join();
  const std::string want = sha_of(rig.pair.v2);
  for (std::size_t i = 0; i < homes.size(); ++i) {
    EXPECT_EQ(codes[i], 0) << fleet_rig::check_once(homes[i]).out;
    EXPECT_EQ(sha_of(current_model(homes[i])), want);
  }
  // Up to date afterwards, and every device reported its commit.
  EXPECT_EQ(fleet_rig::check_once(homes[0]).exit_code, 0);
  auto devices = rig.devices();
  ASSERT_EQ(devices.size(), homes.size());
  for (const auto& d : devices) EXPECT_EQ(d["state"], "committed");
  auto status = run_shell(fleet_rig::agent() + " --config " + (homes[0] / "agent.json").string() + " status --json");
  EXPECT_EQ(json::parse(status.out)[0]["installed_version"], "2");
  // Only the patch travelled, not the model.
  auto metrics = run_shell("curl -s " + rig.server->url("/metrics")).out;
  EXPECT_EQ(metrics.find("mallornd_bytes_served_total{kind=\"model\"}"), std::string::npos);
}

TEST(Agent, FailingHealthCheckRollsBackAndIsNotRetried) {
  fleet_rig rig;
  ASSERT_TRUE(rig.server->listening());
  auto home = rig.device("sick", "release.pub", "exit 7");
  auto r = fleet_rig::until_done(home);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
  EXPECT_EQ(json::parse(r.out)[0]["outcome"], "rolled_back");
  auto devices = rig.devices();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0]["state"], "rolled_back");
  EXPECT_NE(devices[0]["error"].get<std::string>().find("status 7"), std::string::npos);
  // The same target is not installed again.
  EXPECT_EQ(fleet_rig::check_once(home).exit_code, 0);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
}

TEST(Agent, PatchSignedByAnotherKeyIsRefused) {
  fleet_rig rig;
  ASSERT_TRUE(rig.server->listening());
  auto home = rig.device("wary", "other.pub");
  auto r = fleet_rig::until_done(home);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v1));
  std::ifstream log(home / "agent.log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("SignatureError"), std::string::npos) << text;
  EXPECT_EQ(rig.devices()[0]["state"], "failed");
}

TEST(Agent, TamperedPatchFallsBackToTheFullModel) {
  fleet_rig rig;
  ASSERT_TRUE(rig.server->listening());
  auto home = rig.device("dev-t");
  // Let the server build the patch, then flip a byte of the cached file (same size).
  EXPECT_EQ(fleet_rig::check_once(home).exit_code, 3);
  std::filesystem::path patch;
  for (int i = 0; i < 100 && patch.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& e : std::filesystem::directory_iterator(rig.dir / "data" / "patches"))
      if (e.path().extension() == ".mlrn" && e.path().filename().string()[0] != '.') patch = e.path();
  }
  ASSERT_FALSE(patch.empty());
  {
    std::fstream f(patch, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300);
    f.put('\x5a');
  }
  auto r = fleet_rig::until_done(home);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(sha_of(current_model(home)), sha_of(rig.pair.v2));
  auto metrics = run_shell("curl -s " + rig.server->url("/metrics")).out;
  EXPECT_NE(metrics.find("mallornd_bytes_served_total{kind=\"model\"}"), std::string::npos);
}

// SIGKILL at random instants during updates; after every kill the active model is the old or the
// new release, never anything else; once the kills stop, the device converges to the new one.
TEST(Agent, SurvivesSigkillAtRandomInstants) {
  // The largest CI pair, and a health check that takes a moment, so kills land in every phase.
  fleet_rig rig("coral-mnv2-edgetpu_2020-to-2021a");
  ASSERT_TRUE(rig.server->listening());
  const std::string old_sha = sha_of(rig.pair.v1), new_sha = sha_of(rig.pair.v2);
  std::mt19937 rng(12345);
  std::map<std::string, int> states_hit;
  int kills = 0, runs = 0;
  for (int round = 0; round < 6; ++round) {
    auto home = rig.device("victim-" + std::to_string(round), "release.pub", "sleep 0.05; test -s \"$MALLORN_MODEL\"");
    for (int k = 0; k < 12; ++k) {
      const auto delay = std::uniform_int_distribution<int>(0, 250)(rng);
      auto r = run_shell("timeout -s KILL " + std::to_string(delay / 1000.0) + " " + fleet_rig::agent() + " --config " +
                         (home / "agent.json").string() + " check-once >/dev/null 2>&1; echo $?");
      ++runs;
      if (std::atoi(r.out.c_str()) == 137) ++kills;
      auto j = json::parse(std::ifstream(home / "slots" / "journal.json"), nullptr, false);
      if (!j.is_discarded()) ++states_hit[j.value("state", "?")];
      const std::string now = sha_of(current_model(home));
      ASSERT_TRUE(now == old_sha || now == new_sha) << "round " << round << " kill " << k << ": current is neither release";
    }
    auto done = fleet_rig::until_done(home);
    EXPECT_EQ(done.exit_code, 0) << done.out;
    EXPECT_EQ(sha_of(current_model(home)), new_sha);
  }
  std::string seen;
  for (const auto& [s, n] : states_hit) seen += s + "=" + std::to_string(n) + " ";
  std::cout << "[ kill harness ] " << runs << " runs, " << kills << " SIGKILLs; journal states seen after a kill: " << seen << "\n";
  EXPECT_GT(kills, 10);
  EXPECT_GE(states_hit.size(), 3u) << seen;
}

TEST(Agent, GarbageFromTheServerChangesNothing) {
  temp_dir dir("agent-garbage");
  // A "server" that answers every request with 200 and a body that is not JSON.
  const auto port_file = dir / "port";
  const std::string script =
      "import http.server,sys\n"
      "class H(http.server.BaseHTTPRequestHandler):\n"
      "  def reply(self):\n"
      "    n=int(self.headers.get('Content-Length') or 0); self.rfile.read(n)\n"
      "    b=b'<html>surprise</html>'; self.send_response(200); self.send_header('Content-Length',str(len(b)))\n"
      "    self.end_headers(); self.wfile.write(b)\n"
      "  do_GET=do_POST=reply\n"
      "  def log_message(self,*a): pass\n"
      "s=http.server.HTTPServer(('127.0.0.1',0),H); open(sys.argv[1],'w').write(str(s.server_port)); s.serve_forever()\n";
  std::ofstream(dir / "garbage.py") << script;
  std::thread server([&] { run_shell("timeout 20 python3 " + (dir / "garbage.py").string() + " " + port_file.string()); });
  int port = 0;
  for (int i = 0; i < 100 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream(port_file) >> port;
  }
  ASSERT_NE(port, 0);
  const auto pair = model_pairs().front();
  json cfg = {{"server", "http://127.0.0.1:" + std::to_string(port)},
              {"device_id", "g"},
              {"http_timeout", 5},
              {"models", {{{"name", "m"}, {"dir", (dir / "slots").string()}, {"file", "model.bin"}}}}};
  std::ofstream(dir / "agent.json") << cfg.dump();
  const std::string agent = fleet_rig::agent() + " --config " + (dir / "agent.json").string();
  ASSERT_EQ(run_shell(agent + " install m " + pair.old_path.string()).exit_code, 0);
  auto r = run_shell(agent + " check-once --json 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("check-update answered 200"), std::string::npos) << r.out;
  EXPECT_EQ(sha_of(dir / "slots" / "current" / "model.bin"), sha_of(pair.old_path));
  auto j = json::parse(std::ifstream(dir / "slots" / "journal.json"), nullptr, false);
  EXPECT_TRUE(j.is_discarded() || j.value("state", "idle") == "idle");
  run_shell("pkill -f " + (dir / "garbage.py").string());
  server.join();
}
