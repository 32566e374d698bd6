// `mallorn fleet` against a real mallornd: groups, create, list, show, pause/resume/abort, the
// journal's actor, errors with the server's message and a non-zero exit.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/daemon_process.hpp"
#include "support/model_store_fixture.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn::test;
using nlohmann::json;

TEST(RolloutCli, DrivesRolloutsAndGroups) {
  temp_dir dir{"fleet-cli"};
  std::filesystem::create_directories(dir / "models");
  auto pairs = make_store(dir / "models", {"tfm-hello-world-int8"});
  std::ofstream(dir / "token") << "fleet-cli-token-0123456789\n";
  daemon_process d(dir.path(), {"--models", (dir / "models").string(), "--data", (dir / "data").string(),
                                "--admin-token-file", (dir / "token").string(), "--level", "3", "--no-neural",
                                "--rate-limit", "0"});
  const std::string fleet = (bin_dir() / "mallorn").string() + " fleet --server http://127.0.0.1:" +
                            std::to_string(d.port()) + " --token-file " + (dir / "token").string() + " --actor carol ";
  auto r = run_shell(fleet + "group put berlin --match 'site=berlin,hw=rpi4|rpi5,runtime?' --json 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto g = json::parse(r.out);
  EXPECT_EQ(g["match"]["hw"]["in"], json::array({"rpi4", "rpi5"}));
  EXPECT_EQ(g["match"]["runtime"]["present"], true);

  r = run_shell(fleet + "rollout create " + pairs[0].model + " 2 --stages 5,50,100 --group berlin --max-failure-rate 0.1 --json 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto id = std::to_string(json::parse(r.out)["id"].get<int>());

  // A window in an IANA zone; an unknown zone is refused with the server's message.
  r = run_shell(fleet + "rollout create " + pairs[0].model + " 2 --stages 100 --window "
                "'{\"start\":\"02:00\",\"end\":\"05:00\",\"tz\":\"Europe/Berlin\"}' --json 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["window"]["tz"], "Europe/Berlin") << r.out;
  r = run_shell(fleet + "rollout create " + pairs[0].model + " 2 --stages 100 --window "
                "'{\"start\":\"02:00\",\"end\":\"05:00\",\"tz\":\"Europe/Atlantis\"}' 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("unknown time zone 'Europe/Atlantis'"), std::string::npos) << r.out;

  r = run_shell(fleet + "rollout list 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("COMMITTED"), std::string::npos) << r.out;

  r = run_shell(fleet + "rollout pause " + id + " --reason 'night shift' --json 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["state"], "paused");
  r = run_shell(fleet + "rollout show " + id + " 2>&1");
  EXPECT_NE(r.out.find("carol"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("night shift"), std::string::npos) << r.out;
  // show --watch returns once the rollout is final.
  EXPECT_EQ(run_shell(fleet + "rollout abort " + id + " >/dev/null 2>&1").exit_code, 0);
  r = run_shell("timeout 20 " + fleet + "rollout show " + id + " --watch 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("aborted"), std::string::npos) << r.out;

  // Errors: the server's message, exit code 1.
  r = run_shell(fleet + "rollout create " + pairs[0].model + " 2 --stages 50,10 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("strictly increasing"), std::string::npos) << r.out;
  r = run_shell(fleet + "rollout resume " + id + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("409"), std::string::npos) << r.out;
  r = run_shell((bin_dir() / "mallorn").string() + " fleet --server http://127.0.0.1:" + std::to_string(d.port()) +
                " rollout list 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("401"), std::string::npos) << r.out;
  r = run_shell(fleet + "group delete berlin --json 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = run_shell(fleet + "devices --json 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(json::parse(r.out).contains("devices"));
}
