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
