// Drives the real `mallorn` binary: round trips, --json, exit codes, and no output on failure.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "support/models.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using mallorn::test::run_shell;

namespace {
class Cli : public ::testing::Test {
 protected:
  mallorn::test::temp_dir tmp_{"cli"};
  mallorn::test::shell_result mallorn(const std::string& args) {
    return run_shell("cd '" + dir_.string() + "' && '" + (mallorn::test::bin_dir() / "mallorn").string() + "' " + args +
                     " 2>stderr.txt");
  }
  std::string old_model() const { return (pair_ / "old.tflite").string(); }
  std::string new_model() const { return (pair_ / "new.tflite").string(); }
  const fs::path& dir_ = tmp_.path();
  fs::path pair_ = mallorn::test::models_dir() / "pairs" / "tfm-retinaface_a-to-b";
};
}  // namespace

TEST_F(Cli, DiffPatchRoundTripWithJson) {
  auto d = mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn --neural --level 9 --json");
  ASSERT_EQ(d.exit_code, 0) << d.out;
  auto j = nlohmann::json::parse(d.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["format"], "tflite");
  EXPECT_EQ(j["patch_size"].get<std::uint64_t>(), fs::file_size(dir_ / "p.mlrn"));
  EXPECT_GT(j["tensors_unchanged"].get<int>() + j["tensors_modified"].get<int>(), 0);

  auto p = mallorn("patch " + old_model() + " p.mlrn -o out.tflite --json");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  EXPECT_EQ(run_shell("cmp '" + (dir_ / "out.tflite").string() + "' " + new_model()).exit_code, 0);
  auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ(pj["expected_target"], pj["actual_target"]);

  auto info = mallorn("info p.mlrn --json");
  ASSERT_EQ(info.exit_code, 0);
  auto ij = nlohmann::json::parse(info.out);
  EXPECT_EQ(ij["format"], "TFLite");
  EXPECT_TRUE(ij["neural"].get<bool>());
  EXPECT_FALSE(ij["signed"].get<bool>());
  EXPECT_EQ(ij["target_size"].get<std::uint64_t>(), fs::file_size(new_model()));
  EXPECT_EQ(ij["target_hash"], mallorn::test::first_word("sha256sum " + new_model()));
}

TEST_F(Cli, KeygenSignVerify) {
  ASSERT_EQ(mallorn("keygen -o rel").exit_code, 0);
  EXPECT_EQ(fs::file_size(dir_ / "rel.key"), 64u);
  EXPECT_EQ(fs::file_size(dir_ / "rel.pub"), 32u);
  EXPECT_EQ(fs::status(dir_ / "rel.key").permissions() & fs::perms::group_all, fs::perms::none);
  ASSERT_EQ(mallorn("keygen -o other").exit_code, 0);
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  ASSERT_EQ(mallorn("sign p.mlrn --key rel.key -o s.mlrn").exit_code, 0);

  auto ok = mallorn("verify " + old_model() + " s.mlrn --pubkey rel.pub --json");
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_TRUE(nlohmann::json::parse(ok.out)["signature_valid"].get<bool>());

  auto wrong = mallorn("patch " + old_model() + " s.mlrn -o out.tflite --pubkey other.pub --json");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(wrong.out)["error"]["code"], "SignatureError");
  EXPECT_FALSE(fs::exists(dir_ / "out.tflite"));

  auto unsigned_refused = mallorn("patch " + old_model() + " p.mlrn -o out.tflite --pubkey rel.pub");
  EXPECT_EQ(unsigned_refused.exit_code, 1);
  EXPECT_FALSE(fs::exists(dir_ / "out.tflite"));
}

TEST_F(Cli, BadInputFailsCleanlyAndWritesNothing) {
  ASSERT_EQ(mallorn("diff " + old_model() + " " + new_model() + " -o p.mlrn").exit_code, 0);
  auto wrong_source = mallorn("patch " + new_model() + " p.mlrn -o out.tflite --json");
  EXPECT_EQ(wrong_source.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(wrong_source.out)["error"]["code"], "SourceHashMismatch");

  run_shell("cd '" + dir_.string() + "' && head -c 5000 p.mlrn > short.mlrn");
  auto truncated = mallorn("patch " + old_model() + " short.mlrn -o out.tflite --json");
  EXPECT_EQ(truncated.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(truncated.out)["error"]["code"], "InvalidPatch");

  auto not_a_patch = mallorn("info " + old_model());
  EXPECT_EQ(not_a_patch.exit_code, 1);
  EXPECT_FALSE(fs::exists(dir_ / "out.tflite"));
  std::size_t temps = 0;
  for (const auto& e : fs::directory_iterator(dir_)) temps += e.path().string().find(".tmp-") != std::string::npos;
  EXPECT_EQ(temps, 0u);
}

TEST_F(Cli, HelpAndUsage) {
  for (const char* c : {"diff", "patch", "verify", "info", "fingerprint", "keygen", "sign"}) {
    auto r = mallorn(std::string(c) + " --help");
    EXPECT_EQ(r.exit_code, 0) << c;
    EXPECT_NE(r.out.find("usage: mallorn"), std::string::npos) << c;
  }
  EXPECT_EQ(mallorn("--help").exit_code, 0);
  EXPECT_EQ(mallorn("frobnicate").exit_code, 2);
  EXPECT_EQ(mallorn("diff onlyone").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --level 99").exit_code, 2);
  EXPECT_EQ(mallorn("diff a b -o c --bogus").exit_code, 2);
}

TEST_F(Cli, FingerprintMatchesCoreutils) {
  auto r = mallorn("fingerprint " + old_model() + " --json");
  ASSERT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["header_hash"], mallorn::test::first_word("head -c 65536 " + old_model() + " | md5sum"));
  EXPECT_EQ(j["tail_hash"], mallorn::test::first_word("tail -c 4096 " + old_model() + " | md5sum"));
  EXPECT_EQ(j["short_id"].get<std::string>().size(), 16u);
  EXPECT_EQ(j["format"], "tflite");
}
