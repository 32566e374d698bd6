// Patches that must never be installed, served by an honest HTTP server with dishonest content
// (tests/agent/scripted_server.py) so each case reaches exactly the check it is about: a
// truncated download, a download that does not match its announced SHA-256, a patch made for
// another source model, a corrupt body. The whole model is
// unavailable too, so the fallback cannot rescue the update: each case ends with the old model
// active, a log line that names the problem, a `failed` report and the target remembered as failed.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent_rig.hpp"
#include "agent/scripted_server.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;

namespace {

struct bad_patch_case {
  const char* name;
  const char* expected_log;  // what the log must say about the patch
  friend void PrintTo(const bad_patch_case& c, std::ostream* os) { *os << c.name; }
};

}  // namespace

class AgentBadPatch : public ::testing::TestWithParam<bad_patch_case> {};

TEST_P(AgentBadPatch, NeverInstallsAndSaysWhy) {
  const auto param = GetParam();
  temp_dir dir(std::string("bad-patch-") + param.name);
  const auto pairs = model_pairs();
  auto find = [&](const std::string& name) {
    for (const auto& p : pairs)
      if (p.name == name) return p;
    ADD_FAILURE() << name << " missing";
    return pairs.front();
  };
  const auto pair = find("coral-mnv1-025-quant_2020-to-2021a");
  const auto other = find("coral-mnv1-025-quant_2021a-to-2021b");  // another old model (2021a)
  scripted_server server(dir / "server");
  ASSERT_NE(server.port(), 0);
  const auto patch = dir / "server" / "files" / "update.mlrn";
  const std::string mallorn = (bin_dir() / "mallorn").string();
  const std::string source = std::string(param.name) == "wrong-source" ? other.old_path.string() : pair.old_path.string();
  ASSERT_EQ(run_shell(mallorn + " diff " + source + " " + pair.new_path.string() + " -o " + patch.string() +
                      " --level 3 --target-version 2 >/dev/null")
                .exit_code,
            0);
  const auto full_size = std::filesystem::file_size(patch);
  if (std::string(param.name) == "truncated") {
    std::ofstream(dir / "server" / "truncate.json") << json{{"truncate_to", full_size / 2}}.dump();
  } else if (std::string(param.name) == "corrupt-body") {
    std::fstream f(patch, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(full_size - 20));
    f.put('\x42');
  }
  // The server announces the patch file as it is (its SHA-256 and size) and a whole model that is
  // not there.
  json answer = {{"update_available", true},
                 {"current_version", "1"},
                 {"target_version", "2"},
                 {"target_rank", 2},
                 {"target_sha256", sha_of(pair.new_path)},
                 {"full_url", "/files/no-such-model"},
                 {"full_size", std::filesystem::file_size(pair.new_path)},
                 {"patch_url", "/files/update.mlrn"},
                 {"patch_sha256", std::string(param.name) == "wrong-hash" ? sha_of(pair.old_path) : sha_of(patch)},
                 {"patch_size", full_size}};
  std::ofstream(dir / "server" / "check-update.json") << answer.dump();
  json cfg = {{"server", "http://127.0.0.1:" + std::to_string(server.port())},
              {"device_id", param.name},
              {"http_timeout", 10},
              {"models", {{{"name", "mnv1"}, {"dir", (dir / "slots").string()}, {"file", "model.tflite"}}}}};
  std::ofstream(dir / "agent.json") << cfg.dump();
  const std::string agent = fleet_rig::agent() + " --config " + (dir / "agent.json").string();
  ASSERT_EQ(run_shell(agent + " install mnv1 " + pair.old_path.string()).exit_code, 0);

  auto r = run_shell(agent + " check-once --json 2>" + (dir / "agent.log").string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(sha_of(dir / "slots" / "current" / "model.tflite"), sha_of(pair.old_path));
  const auto log = run_shell("cat " + (dir / "agent.log").string()).out;
  EXPECT_NE(log.find(param.expected_log), std::string::npos) << log;
  EXPECT_NE(log.find("falling back to the full model"), std::string::npos) << log;
  EXPECT_NE(log.find("stays active"), std::string::npos) << log;
  auto journal = json::parse(std::ifstream(dir / "slots" / "journal.json"));
  EXPECT_EQ(journal["state"], "idle");
  EXPECT_EQ(journal["failed_target"], sha_of(pair.new_path));
  auto reports = server.reports();
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back()["state"], "failed");
  EXPECT_FALSE(reports.back()["error"].get<std::string>().empty());
  // The failed target is not tried again.
  EXPECT_EQ(run_shell(agent + " check-once --json 2>/dev/null").exit_code, 0);
  EXPECT_EQ(sha_of(dir / "slots" / "current" / "model.tflite"), sha_of(pair.old_path));
}

INSTANTIATE_TEST_SUITE_P(Cases, AgentBadPatch,
                         // A truncated file whose Content-Length says so is refused before a byte is
                         // written (the announced size is the patch's); the SHA-256 would catch it too.
                         ::testing::Values(bad_patch_case{"truncated", "for a file announced as"},
                                           bad_patch_case{"wrong-hash", "does not match its SHA-256"},
                                           bad_patch_case{"wrong-source", "SourceHashMismatch"},
                                           bad_patch_case{"corrupt-body", "InvalidPatch"}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });
