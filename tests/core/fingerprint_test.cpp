#include <gtest/gtest.h>

#include "mallorn/core/fingerprint.hpp"
#include "support/models.hpp"
#include "support/shell.hpp"

using namespace mallorn;

namespace {
// The seed's definition, computed with coreutils instead of our code.
std::string independent_combined(const std::filesystem::path& f) {
  auto head = test::first_word("head -c 65536 '" + f.string() + "' | md5sum");
  auto tail = test::first_word("tail -c 4096 '" + f.string() + "' | md5sum");
  std::string out;
  for (std::size_t i = 0; i < 32; i += 2) {
    int x = std::stoi(head.substr(i, 2), nullptr, 16) ^ std::stoi(tail.substr(i, 2), nullptr, 16);
    char b[3];
    std::snprintf(b, sizeof b, "%02x", x);
    out += b;
  }
  return out;
}
}  // namespace

TEST(Fingerprint, MatchesAnIndependentComputationOnEveryRealModel) {
  int checked = 0;
  for (const auto& p : test::model_pairs()) {
    for (const auto& f : {p.old_path, p.new_path}) {
      auto fp = core::fingerprint_file(f);
      ASSERT_TRUE(fp.ok()) << f;
      EXPECT_EQ(fp->file_size, std::filesystem::file_size(f));
      EXPECT_EQ(fp->header_hash, test::first_word("head -c 65536 '" + f.string() + "' | md5sum")) << f;
      EXPECT_EQ(fp->tail_hash, test::first_word("tail -c 4096 '" + f.string() + "' | md5sum")) << f;
      EXPECT_EQ(fp->combined_hash, independent_combined(f)) << f;
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
