// `mallorn diff --profile mcu`, `mallorn info` on the result, and `mallorn patch` refusing it.
#include "lite_rig.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {
namespace {

TEST(mcu_cli, diff_info_and_the_standard_patch_command) {
  temp_dir dir("mcu-cli");
  auto pair = tfm_pair("tfm-micro-speech_realign");
  auto m = (bin_dir() / "mallorn").string();
  auto old_path = (pair / "old.tflite").string(), new_path = (pair / "new.tflite").string();
  auto patch = (dir / "u.mlrn").string();
  auto diff = run_shell(m + " diff " + old_path + " " + new_path + " -o " + patch + " --profile mcu --target-version 4 --json");
  ASSERT_EQ(diff.exit_code, 0) << diff.out;
  EXPECT_NE(diff.out.find("\"profile\": \"mcu\""), std::string::npos) << diff.out;

  auto info = run_shell(m + " info " + patch);
  EXPECT_EQ(info.exit_code, 0);
  EXPECT_NE(info.out.find("mcu profile"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("lzss"), std::string::npos) << info.out;

  auto apply = run_shell(m + " patch " + old_path + " " + patch + " -o " + (dir / "out").string() + " 2>&1");
  EXPECT_EQ(apply.exit_code, 1);
  EXPECT_NE(apply.out.find("UnsupportedVersion"), std::string::npos) << apply.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));

  // The file the CLI wrote applies on the device side.
  auto bytes = load(patch), old_img = load(pair / "old.tflite"), new_img = load(pair / "new.tflite");
  ab_slots s(old_img, new_img.size());
  ASSERT_EQ(apply_mcu(s, bytes), 0);
  EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin()));

  EXPECT_EQ(run_shell(m + " diff " + old_path + " " + new_path + " -o " + patch + " --profile tiny 2>/dev/null").exit_code, 2);
  EXPECT_EQ(run_shell(m + " diff " + old_path + " " + new_path + " -o " + patch + " --profile mcu --neural 2>/dev/null").exit_code, 2);
}

}  // namespace
}  // namespace mallorn::test
