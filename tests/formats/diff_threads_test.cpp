// The differ encodes tensor chunks on worker threads: the patch must be the same bytes whatever
// the thread count, and it must still apply.
#include <gtest/gtest.h>

#include "mallorn/core/io.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"
#include "support/synthetic_models.hpp"

using namespace mallorn;
using test::byte_vec;

namespace {

// Several tensors, two of them longer than one 4 MiB chunk: many independent jobs.
std::pair<byte_vec, byte_vec> synthetic_pair() {
  std::vector<test::synth_tensor> olds, news;
  for (int i = 0; i < 6; ++i) {
    std::size_t n = i < 2 ? 1'100'000 : 100'000;  // f32 elements: 4.4 MB (two chunks) or 0.4 MB
    auto w = test::random_weights_f32(n, 10 + i);
    olds.push_back({"layer" + std::to_string(i) + ".weight", "F32", {static_cast<std::int64_t>(n)}, w});
    news.push_back({"layer" + std::to_string(i) + ".weight", "F32", {static_cast<std::int64_t>(n)},
                    i == 5 ? w : test::perturb_f32(w, 0.2, 20 + i)});
  }
  return {test::make_safetensors(olds), test::make_safetensors(news)};
}

}  // namespace

TEST(DiffThreads, SyntheticPatchIsTheSameBytesForAnyThreadCount) {
  auto [old_model, new_model] = synthetic_pair();
  formats::diff_options o;
  o.level = 3;  // the level does not change how work is split; 19 would only make the test slow
  o.neural = true;
  o.threads = 1;
  auto one = test::make_patch(old_model, new_model, o);
  for (unsigned t : {2u, 5u}) {
    o.threads = t;
    EXPECT_EQ(test::make_patch(old_model, new_model, o), one) << t << " threads";
  }
  o.threads = 0;  // every core
  EXPECT_EQ(test::make_patch(old_model, new_model, o), one) << "default thread count";
  auto out = test::apply_in_chunks(old_model, one, 1 << 20);
  ASSERT_TRUE(out.ok()) << out.err().what();
  EXPECT_TRUE(*out == new_model);
}

TEST(DiffThreads, RealPairIsTheSameBytesForAnyThreadCount) {
  auto dir = test::models_dir() / "pairs" / "coral-mnv2-quant_2020-to-2021a";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " missing";
  auto old_model = core::read_file(dir / "old.tflite");
  auto new_model = core::read_file(dir / "new.tflite");
  ASSERT_TRUE(old_model.ok() && new_model.ok());
  formats::diff_options o;
  o.threads = 1;
  auto one = test::make_patch(*old_model, *new_model, o);
  o.threads = 2;
  EXPECT_EQ(test::make_patch(*old_model, *new_model, o), one);
}

// At the server's setting the gap chunks of both candidate bodies (tensor-aware and generic) are
// compressed on the workers too, sharing one reference cache: still the same bytes at 1, 2 and 4.
TEST(DiffThreads, ServerSettingIsTheSameBytesAt1_2_4Threads) {
  for (const char* name : {"tfm-micro-speech_realign", "m2v-test-model_tensor-rename"}) {
    auto dir = test::models_dir() / "pairs" / name;
    if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " missing";
    std::filesystem::path old_path, new_path;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      auto stem = e.path().stem().string();
      if (stem == "old") old_path = e.path();
      if (stem == "new") new_path = e.path();
    }
    auto old_model = core::read_file(old_path);
    auto new_model = core::read_file(new_path);
    ASSERT_TRUE(old_model.ok() && new_model.ok()) << name;
    formats::diff_options o;
    o.level = 19;
    o.neural = true;
    o.threads = 1;
    auto one = test::make_patch(*old_model, *new_model, o);
    for (unsigned t : {2u, 4u}) {
      o.threads = t;
      EXPECT_EQ(test::make_patch(*old_model, *new_model, o), one) << name << ", " << t << " threads";
    }
    auto out = test::apply_in_chunks(*old_model, one, 0);
    ASSERT_TRUE(out.ok()) << out.err().what();
    EXPECT_TRUE(*out == *new_model) << name;
  }
}

TEST(DiffThreads, SyntheticPatchAtLevel9IsTheSameBytesAt1_2_4Threads) {
  // Level 9 adds the approximate matcher, whose suffix index is built once and shared by threads.
  auto [old_model, new_model] = synthetic_pair();
  formats::diff_options o;
  o.level = 9;
  o.threads = 1;
  auto one = test::make_patch(old_model, new_model, o);
  for (unsigned t : {2u, 4u}) {
    o.threads = t;
    EXPECT_EQ(test::make_patch(old_model, new_model, o), one) << t << " threads";
  }
}
