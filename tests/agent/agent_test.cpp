// mallorn-agent against the real mallornd on loopback, real model pairs, real processes: a fleet
// update, health-check rollback, a bad signature, a tampered patch, and SIGKILL at random instants.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/signature.hpp"
#include "agent/agent_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;


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
  // A 1.8 MB patch and a health check that takes a moment, so kills land in most phases (the
  // fault sweeps in agent_faults_test.cpp cut the power before every file operation instead).
  fleet_rig rig(unrelated_pair);
  ASSERT_TRUE(rig.server->listening());
  const std::string old_sha = sha_of(rig.pair.v1), new_sha = sha_of(rig.pair.v2);
  const std::string health = "sleep 0.05; test -s \"$MALLORN_MODEL\"";
  // Kill instants are drawn over the time one whole update takes in this build (a sanitizer build
  // or a loaded machine is several times slower than Release), so they land in every phase.
  int update_ms = 0;
  {
    ASSERT_EQ(fleet_rig::until_done(rig.device("builder", "release.pub", health)).exit_code, 0);  // patch built
    auto pacer = rig.device("pacer", "release.pub", health);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fleet_rig::until_done(pacer);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    update_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  }
  std::mt19937 rng(12345);
  std::map<std::string, int> states_hit;
  int kills = 0, runs = 0;
  for (int round = 0; round < 6; ++round) {
    auto home = rig.device("victim-" + std::to_string(round), "release.pub", health);
    for (int k = 0; k < 12; ++k) {
      const auto delay = std::uniform_int_distribution<int>(0, std::max(150, update_ms))(rng);
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
  std::cout << "[ kill harness ] " << runs << " runs, " << kills << " SIGKILLs over 0.." << std::max(150, update_ms)
            << " ms; journal states seen after a kill: " << seen << "\n";
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
  EXPECT_NE(r.out.find("bad server answer: the body is not a JSON object (body: <html>surprise</html>)"), std::string::npos)
      << r.out;
  EXPECT_EQ(sha_of(dir / "slots" / "current" / "model.bin"), sha_of(pair.old_path));
  auto j = json::parse(std::ifstream(dir / "slots" / "journal.json"), nullptr, false);
  EXPECT_TRUE(j.is_discarded() || j.value("state", "idle") == "idle");
  run_shell("pkill -f " + (dir / "garbage.py").string());
  server.join();
}

// The daemon: one config with two models, `run` polls, updates both, and stops on SIGTERM.
TEST(Agent, RunDaemonUpdatesEveryModelAndStopsOnSigterm) {
  temp_dir dir("agent-run");
  std::filesystem::create_directories(dir / "models");
  auto pairs = make_store(dir / "models", default_pairs());
  ASSERT_EQ(pairs.size(), 2u);
  daemon_process server(dir.path(), {"--models", (dir / "models").string(), "--data", (dir / "data").string(), "--level",
                                     "3", "--no-neural", "--rate-limit", "0"});
  ASSERT_TRUE(server.listening());
  json models = json::array();
  for (const auto& p : pairs)
    models.push_back({{"name", p.model}, {"dir", (dir / "device" / p.model).string()}, {"file", "model.tflite"}});
  json cfg = {{"server", server.url()}, {"device_id", "daemon"}, {"poll_interval", 1}, {"jitter", 0.0}, {"models", models}};
  std::ofstream(dir / "agent.json") << cfg.dump();
  const std::string agent = fleet_rig::agent() + " --config " + (dir / "agent.json").string();
  for (const auto& p : pairs) ASSERT_EQ(run_shell(agent + " install " + p.model + " " + p.v1.string()).exit_code, 0);
  int code = -1;
  std::thread daemon([&] {
    code = run_shell("echo $$ > " + (dir / "pid").string() + "; exec " + agent + " run 2>" + (dir / "agent.log").string())
               .exit_code;
  });
  auto updated = [&] {
    for (const auto& p : pairs)
      if (sha_of(dir / "device" / p.model / "current" / "model.tflite") != sha_of(p.v2)) return false;
    return true;
  };
  for (int i = 0; i < 300 && !updated(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(updated()) << run_shell("cat " + (dir / "agent.log").string()).out;
  int pid = 0;
  std::ifstream(dir / "pid") >> pid;
  ASSERT_GT(pid, 0);
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  daemon.join();
  EXPECT_EQ(code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // Both models reported their commit.
  auto status = json::parse(run_shell(agent + " status --json").out);
  ASSERT_EQ(status.size(), 2u);
  for (const auto& m : status) EXPECT_EQ(m["installed_version"], "2") << m.dump();
}
