// Staging against the real mallornd over HTTP: 200 simulated devices (distinct ids and tags, one
// curl process sending every check-update on a kept-alive connection) against a rollout of a
// group. The 10% stage offers the update to 10% +- sampling error of the matching devices only,
// the same ones on every poll; the 50% stage is a superset; the counts survive a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "mallorn/core/hash.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/shell.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

const std::string token = "rollout-daemon-token-0123456789";
constexpr int fleet_size = 200;

std::string sha_hex(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }
bool in_berlin(int i) { return i % 3 != 0; }
json tags_of(int i) { return {{"site", in_berlin(i) ? "berlin" : "paris"}, {"hw", i % 2 ? "rpi4" : "rpi5"}}; }

// A curl config value: inside double quotes, '"' and '\\' are escaped.
std::string config_quoted(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// One check-update per device through a single curl (a curl config file of 200 requests); the
// ids of the devices offered version 2.
std::set<int> poll(const daemon_process& d, const temp_dir& dir, const std::string& sha, const std::string& model) {
  const auto cfg = dir / "poll.curl";
  {
    std::ofstream out(cfg);
    for (int i = 0; i < fleet_size; ++i) {
      json body = {{"sha256", sha}, {"model", model}, {"device_id", "dev-" + std::to_string(i)}, {"tags", tags_of(i)}};
      if (i) out << "next\n";
      out << "url = \"" << d.url("/check-update") << "\"\n"
          << "header = \"Content-Type: application/json\"\n"
          << "data = \"" << config_quoted(body.dump()) << "\"\n";
    }
  }
  auto r = run_shell("curl -s -K " + cfg.string());
  // Answers come back in request order, one line each (mallornd ends JSON with a newline).
  std::set<int> offered;
  std::istringstream lines(r.out);
  std::string line;
  int i = 0;
  for (; i < fleet_size && std::getline(lines, line); ++i) {
    auto a = json::parse(line, nullptr, false);
    EXPECT_FALSE(a.is_discarded()) << "dev-" << i << ": " << line.substr(0, 200);
    if (a.is_discarded() || !a.value("update_available", false) || a.value("target_version", "") != "2") continue;
    EXPECT_GT(a.value("rollout", 0), 0) << "an offer under a rollout names it: " << line;
    offered.insert(i);
  }
  EXPECT_EQ(i, fleet_size) << r.out.substr(0, 500);
  return offered;
}

json admin(const daemon_process& d, const std::string& method, const std::string& path, const std::string& body = {}) {
  auto r = run_shell("curl -s -X " + method + " -H 'Authorization: Bearer " + token + "' -H 'X-Mallorn-Actor: staging' " +
                     (body.empty() ? std::string() : "-d '" + body + "' ") + d.url(path));
  return json::parse(r.out, nullptr, false);
}

void expect_share(std::size_t got, std::size_t n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(double(got), n * p, 4 * sd + 1) << got << " of " << n << " for p=" << p;
}

}  // namespace

TEST(RolloutDaemon, StagingOverHttpWith200Devices) {
  daemon_store_rig store("rollout-daemon", token, {"tfm-hello-world-int8"});
  const auto& pair = store.pairs.at(0);
  const std::string sha = sha_hex(pair.v1);
  auto d = std::make_unique<daemon_process>(store.dir.path(), store.args());
  ASSERT_EQ(admin(*d, "PUT", "/admin/groups/berlin", R"({"match": {"site": "berlin"}})")["name"], "berlin");
  auto created = admin(*d, "POST", "/admin/rollouts",
                       json{{"model", pair.model}, {"version", "2"}, {"group", "berlin"}, {"stages", {10, 50, 100}},
                            {"min_reports", 1000}}.dump());
  ASSERT_TRUE(created.contains("id")) << created;
  const std::string id = std::to_string(created["id"].get<int>());
  std::size_t matching = 0;
  for (int i = 0; i < fleet_size; ++i) matching += in_berlin(i);

  const auto first = poll(*d, store.dir, sha, pair.model);
  for (int i : first) EXPECT_TRUE(in_berlin(i)) << "dev-" << i << " is not in the group";
  expect_share(first.size(), matching, 0.10);
  EXPECT_GT(first.size(), 0u);
  EXPECT_EQ(poll(*d, store.dir, sha, pair.model), first) << "the same devices on every poll";

  ASSERT_EQ(admin(*d, "POST", "/admin/rollouts/" + id + "/advance")["stage_percent"], 50.0);
  const auto half = poll(*d, store.dir, sha, pair.model);
  expect_share(half.size(), matching, 0.50);
  EXPECT_TRUE(std::includes(half.begin(), half.end(), first.begin(), first.end())) << "50% contains 10%";
  for (int i : half) EXPECT_TRUE(in_berlin(i)) << "dev-" << i;

  // Offers are recorded off the request path (once a second): poll the count, generous deadline.
  json shown;
  for (int i = 0; i < 300; ++i) {
    shown = admin(*d, "GET", "/admin/rollouts/" + id);
    if (shown["devices"]["offered"] == half.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(shown["devices"]["offered"], half.size()) << shown.dump();

  // Restart: same stage, same counts, same devices.
  d.reset();
  d = std::make_unique<daemon_process>(store.dir.path(), store.args());
  auto after = admin(*d, "GET", "/admin/rollouts/" + id);
  EXPECT_EQ(after["stage"], 1);
  EXPECT_EQ(after["devices"], shown["devices"]);
  EXPECT_EQ(poll(*d, store.dir, sha, pair.model), half);
}
