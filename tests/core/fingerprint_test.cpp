#include <gtest/gtest.h>

#include "mallorn/core/fingerprint.hpp"
#include "support/models.hpp"
#include "support/coreutils_fingerprint.hpp"

using namespace mallorn;


TEST(Fingerprint, MatchesAnIndependentComputationOnEveryRealModel) {
  int checked = 0;
  for (const auto& p : test::model_pairs()) {
    for (const auto& f : {p.old_path, p.new_path}) {
      auto fp = core::fingerprint_file(f);
      ASSERT_TRUE(fp.ok()) << f;
      EXPECT_EQ(fp->file_size, std::filesystem::file_size(f));
      auto expected = test::fingerprint_with_coreutils(f);
      EXPECT_EQ(fp->header_hash, expected.header_hash) << f;
      EXPECT_EQ(fp->tail_hash, expected.tail_hash) << f;
      EXPECT_EQ(fp->combined_hash, expected.combined_hash) << f;
      EXPECT_EQ(fp->short_id(), fp->combined_hash.substr(0, 16));
      ++checked;
    }
  }
  EXPECT_GE(checked, 30);
}

TEST(Fingerprint, DetectsFormatsAndTellsVersionsApart) {
  auto pairs = test::models_dir() / "pairs";
  auto tfl_old = *core::fingerprint_file(pairs / "tfm-hello-world-int8" / "old.tflite");
  auto tfl_new = *core::fingerprint_file(pairs / "tfm-hello-world-int8" / "new.tflite");
  EXPECT_EQ(tfl_old.format, core::model_format::tflite);
  EXPECT_TRUE(tfl_old.matches(tfl_old));
  EXPECT_FALSE(tfl_old.matches(tfl_new));
  EXPECT_EQ(core::fingerprint_file(pairs / "gguf-vocab-falcon_2023-to-2024" / "old.gguf")->format, core::model_format::gguf);
  EXPECT_EQ(core::fingerprint_file(pairs / "m2v-test-model_tensor-rename" / "old.safetensors")->format,
            core::model_format::safetensors);
  EXPECT_FALSE(core::fingerprint_file(pairs / "does-not-exist").ok());
}
