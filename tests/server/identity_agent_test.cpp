// Device identity end to end: a real mallorn-agent with a device_key against a real mallornd
// with --device-auth required. The agent makes its key (0600), enrolls, waits for admission
// (check-once says "pending"), the operator admits it with the real CLI, and the update applies
// with a device token on every request.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "agent/agent_rig.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

TEST(DeviceIdentityAgent, EnrollsWaitsForAdmissionThenUpdatesWithATokenEnd2End) {
  fleet_rig fleet("tfm-hello-world-int8", {"--device-auth", "required", "--device-token-ttl", "60"});
  ASSERT_TRUE(fleet.server->listening()) << fleet.server->log();
  fleet.extra_config = {{"device_key", (fleet.dir / "cam-7" / "device.key").string()}, {"tags", {{"site", "berlin"}}}};
  const auto home = fleet.device("cam-7");

  auto first = fleet_rig::check_once(home);
  EXPECT_EQ(first.exit_code, 3) << first.out << fleet_rig::log(home);
  EXPECT_NE(fleet_rig::log(home).find("admit"), std::string::npos) << fleet_rig::log(home);
  struct stat st {};
  ASSERT_EQ(::stat((home / "device.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::filesystem::file_size(home / "device.key"), 64u);
  EXPECT_EQ(sha_of(current_model(home)), sha_of(fleet.pair.v1));

  const std::string cli = (bin_dir() / "mallorn").string() + " fleet --server " + fleet.server->url() +
                          " --token-file " + (fleet.dir / "token").string() + " devices ";
  auto pending = run_shell(cli + "pending --json");
  ASSERT_EQ(pending.exit_code, 0) << pending.out;
  auto listed = json::parse(pending.out)["devices"];
  ASSERT_EQ(listed.size(), 1u) << listed;
  EXPECT_EQ(listed[0]["device_id"], "cam-7");
  EXPECT_EQ(listed[0]["tags"]["site"], "berlin");
  ASSERT_EQ(run_shell(cli + "admit cam-7").exit_code, 0);

  auto done = fleet_rig::until_done(home);
  EXPECT_EQ(done.exit_code, 0) << done.out << fleet_rig::log(home) << fleet.server->log();
  EXPECT_EQ(sha_of(current_model(home)), sha_of(fleet.pair.v2));
  // The report arrived under the authenticated id.
  bool reported = false;
  for (const auto& d : fleet.devices()) reported = reported || d["device_id"] == "cam-7";
  EXPECT_TRUE(reported);

  // Revoked: the next check fails with a clear message instead of updating anything.
  ASSERT_EQ(run_shell(cli + "revoke cam-7").exit_code, 0);
  auto after = fleet_rig::check_once(home);
  EXPECT_EQ(after.exit_code, 1) << after.out;
  EXPECT_NE(fleet_rig::log(home).find("revoked"), std::string::npos) << fleet_rig::log(home);
}

// The agent's token is refused before it expires (here: the server forgot it): the next request
// gets 401, the agent gets a new token and repeats the request once, and keeps working.
TEST(DeviceIdentityAgent, ARefusedTokenIsReplacedAndTheRequestRepeated) {
  temp_dir scratch("identity-agent");
  std::ofstream(scratch / "preauth.txt") << "cam-8\n";
  fleet_rig fleet("tfm-hello-world-int8", {"--device-auth", "required", "--device-preauth", (scratch / "preauth.txt").string()});
  ASSERT_TRUE(fleet.server->listening()) << fleet.server->log();
  fleet.extra_config = {{"device_key", (fleet.dir / "cam-8" / "device.key").string()}, {"poll_interval", 1}, {"jitter", 0}};
  const auto home = fleet.device("cam-8");
  const auto db = (fleet.dir / "data" / "index.sqlite").string();
  auto tokens = [&] {  // the stored token hashes
    auto r = run_shell("python3 -c \"import sqlite3; [print(h) for (h,) in sqlite3.connect('" + db +
                       "').execute('SELECT token_sha256 FROM device_tokens')]\"");
    return r.out;
  };
  auto started = run_shell(fleet_rig::agent() + " --config " + (home / "agent.json").string() + " run > " +
                           (home / "agent.log").string() + " 2>&1 & echo $!");
  const pid_t agent = std::atoi(started.out.c_str());
  ASSERT_GT(agent, 0);
  struct stop_agent {  // also when an assertion below returns early
    pid_t pid;
    ~stop_agent() { ::kill(pid, SIGTERM); }
  } stop{agent};
  auto until = [](auto&& done) {
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120); std::chrono::steady_clock::now() < end;) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  };
  EXPECT_TRUE(until([&] { return sha_of(current_model(home)) == sha_of(fleet.pair.v2); })) << fleet_rig::log(home);
  const std::string first = tokens();
  ASSERT_EQ(first.size(), 65u) << first;  // one hash and a newline
  // The server forgets every token; the running agent still holds its (now unknown) one. Its
  // next check (within a second or two) is refused, and it comes back with a new token.
  run_shell("python3 -c \"import sqlite3; c = sqlite3.connect('" + db + "'); c.execute('DELETE FROM device_tokens'); c.commit()\"");
  EXPECT_TRUE(until([&] {
    const auto now = tokens();
    return now.size() == 65 && now != first;
  })) << fleet_rig::log(home) << fleet.server->log();
  EXPECT_EQ(fleet_rig::log(home).find("no device token"), std::string::npos) << fleet_rig::log(home);
}
