// File-level API: outputs appear only after the target hash matched; nothing is left behind.
#include <gtest/gtest.h>

#include <fstream>

#include "mallorn/core/io.hpp"
#include "mallorn/formats/differ.hpp"
#include "support/models.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
namespace fs = std::filesystem;

namespace {
class PatchFiles : public ::testing::Test {
 protected:
  std::size_t files_in_dir() const { return tmp_.entries(); }
  test::temp_dir tmp_{"pf"};
  const fs::path& dir_ = tmp_.path();
  fs::path pair_ = test::models_dir() / "pairs" / "coral-mnv1-025-quant_2021a-to-2021b";
};
}  // namespace

TEST_F(PatchFiles, CreateApplyVerifyInfo) {
  formats::diff_options o;
  o.target_version = 7;
  auto st = formats::create_patch_file(pair_ / "old.tflite", pair_ / "new.tflite", dir_ / "p.mlrn", o);
  ASSERT_TRUE(st.ok()) << st.err().what();
  EXPECT_EQ(st->format, core::model_format::tflite);
  EXPECT_EQ(st->patch_size, fs::file_size(dir_ / "p.mlrn"));
  EXPECT_GT(st->tensors_unchanged, 0u);

  auto h = core::read_patch_header(dir_ / "p.mlrn");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->target_version, 7u);
  EXPECT_EQ(h->target_size, fs::file_size(pair_ / "new.tflite"));

  auto v = core::verify_patch_file(pair_ / "old.tflite", dir_ / "p.mlrn");
  ASSERT_TRUE(v.ok()) << v.err().what();
  EXPECT_EQ(v->actual_target, h->target_sha256);

  auto a = core::apply_patch_file(pair_ / "old.tflite", dir_ / "p.mlrn", dir_ / "out.tflite");
  ASSERT_TRUE(a.ok()) << a.err().what();
  EXPECT_EQ(*core::sha256_of_file(dir_ / "out.tflite"), *core::sha256_of_file(pair_ / "new.tflite"));
}

TEST_F(PatchFiles, FailedApplyLeavesNoOutputAndNoTempFiles) {
  ASSERT_TRUE(formats::create_patch_file(pair_ / "old.tflite", pair_ / "new.tflite", dir_ / "p.mlrn").ok());
  auto bytes = *core::read_file(dir_ / "p.mlrn");
  bytes.resize(bytes.size() - 10);
  ASSERT_TRUE(core::write_file_atomic(dir_ / "short.mlrn", bytes).ok());
  std::size_t before = files_in_dir();

  auto r = core::apply_patch_file(pair_ / "old.tflite", dir_ / "short.mlrn", dir_ / "out.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, core::errc::invalid_patch);
  EXPECT_FALSE(fs::exists(dir_ / "out.tflite"));
  EXPECT_EQ(files_in_dir(), before) << "a temp file was left behind";

  auto wrong = core::apply_patch_file(pair_ / "new.tflite", dir_ / "p.mlrn", dir_ / "out.tflite");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.err().code, core::errc::source_hash_mismatch);
  EXPECT_FALSE(fs::exists(dir_ / "out.tflite"));
}

TEST_F(PatchFiles, ExistingOutputSurvivesAFailedApply) {
  ASSERT_TRUE(formats::create_patch_file(pair_ / "old.tflite", pair_ / "new.tflite", dir_ / "p.mlrn").ok());
  std::vector<std::uint8_t> keep{1, 2, 3};
  ASSERT_TRUE(core::write_file_atomic(dir_ / "out.tflite", keep).ok());
  auto r = core::apply_patch_file(pair_ / "new.tflite", dir_ / "p.mlrn", dir_ / "out.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(*core::read_file(dir_ / "out.tflite"), keep);
}

TEST_F(PatchFiles, MissingInputsAreIoErrors) {
  auto r = formats::create_patch_file(dir_ / "nope", pair_ / "new.tflite", dir_ / "p.mlrn");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, core::errc::io_error);
  EXPECT_FALSE(fs::exists(dir_ / "p.mlrn"));
}
