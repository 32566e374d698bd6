#include <gtest/gtest.h>

#include "mallorn/core/io.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"
#include "support/synthetic_models.hpp"

using namespace mallorn;
using test::byte_vec;

namespace {
byte_vec load(const std::filesystem::path& p) {
  auto r = core::read_file(p);
  EXPECT_TRUE(r.ok()) << p;
  return r.ok() ? *r : byte_vec{};
}

std::size_t expect_round_trip(const byte_vec& old_model, const byte_vec& new_model, formats::diff_options opts = {}) {
  auto patch = test::make_patch(old_model, new_model, opts);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1 << 20}}) {
    auto out = test::apply_in_chunks(old_model, patch, chunk);
    EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.err().what());
    if (out.ok()) EXPECT_TRUE(*out == new_model) << "output differs from the new model";
  }
  return patch.size();
}
}  // namespace

class RealPairs : public ::testing::TestWithParam<test::model_pair> {};

TEST_P(RealPairs, RoundTripsBitForBitAtDefaultAndNeural) {
  auto old_model = load(GetParam().old_path);
  auto new_model = load(GetParam().new_path);
  std::size_t plain = expect_round_trip(old_model, new_model);
  formats::diff_options neural;
  neural.neural = true;
  neural.level = 9;
  std::size_t nn = expect_round_trip(old_model, new_model, neural);
  // A patch never costs more than shipping the new model zstd-compressed plus the header.
  EXPECT_LT(std::min(plain, nn), new_model.size() + 512);
}

INSTANTIATE_TEST_SUITE_P(Models, RealPairs, ::testing::ValuesIn(test::model_pairs()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& c : n) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(RealPairsPresent, ModelsFolderHasPairs) { EXPECT_GE(test::model_pairs().size(), 15u); }

TEST(Synthetic, SafetensorsFineTuneIsMuchSmallerThanTheModel) {
  auto w = test::random_weights_f32(200000, 1);
  auto old_model = test::make_safetensors({{"a.weight", "F32", {1000, 200}, w}, {"a.bias", "F32", {4}, byte_vec(16, 1)}});
  auto new_model = test::make_safetensors(
      {{"a.weight", "F32", {1000, 200}, test::perturb_f32(w, 0.05, 2)}, {"a.bias", "F32", {4}, byte_vec(16, 1)}});
  formats::diff_options o;
  o.neural = true;
  auto size = expect_round_trip(old_model, new_model, o);
  EXPECT_LT(size, new_model.size() / 4);
}

TEST(Synthetic, F32ToF16IsPredictedFromTheOldTensor) {
  auto w = test::random_weights_f32(100000, 3);
  byte_vec half(w.size() / 2);
  for (std::size_t i = 0; i < w.size() / 4; ++i) {
    // numpy's astype(float16) rounding
    float f;
    std::memcpy(&f, &w[4 * i], 4);
    _Float16 h = static_cast<_Float16>(f);
    std::memcpy(&half[2 * i], &h, 2);
  }
  auto old_model = test::make_safetensors({{"emb", "F32", {50000, 2}, w}});
  auto new_model = test::make_safetensors({{"emb", "F16", {50000, 2}, half}});
  auto size = expect_round_trip(old_model, new_model);
  EXPECT_LT(size, 2000u) << "cast residual should be ~empty";
}

TEST(Synthetic, GgufQuantizedAndFloatTensorsRoundTrip) {
  std::mt19937 rng(5);
  byte_vec q8(34 * 64);
  for (auto& b : q8) b = static_cast<std::uint8_t>(rng());
  auto q8_new = q8;
  for (std::size_t i = 2; i < q8_new.size(); i += 97) q8_new[i] ^= 1;
  auto f = test::random_weights_f32(4096, 6);
  auto old_model = test::make_gguf({{"blk.0.w", 8, {2048}, q8}, {"blk.0.f", 0, {4096}, f}});
  auto new_model = test::make_gguf({{"blk.0.w", 8, {2048}, q8_new}, {"blk.0.f", 0, {4096}, test::perturb_f32(f, 0.1, 7)}});
  formats::diff_options o;
  o.neural = true;
  expect_round_trip(old_model, new_model, o);
}

// A re-export that renames every tensor and reorders tensors of one shape (silero-vad's op18
// re-export: the 16 kHz branch became a copy of the old 8 kHz one, and the 8 kHz branch its
// fine-tune) must pair each renamed tensor with the old tensor it came from, not the first old
// tensor of that shape in file order.
TEST(Synthetic, RenamedSameShapeTensorsPairWithTheirOwnOldTensor) {
  auto a = test::random_weights_f32(100000, 11), b = test::random_weights_f32(100000, 12),
       c = test::random_weights_f32(100000, 13);
  auto old_model = test::make_safetensors(
      {{"a.w", "F32", {100000}, a}, {"b.w", "F32", {100000}, b}, {"c.w", "F32", {100000}, c}});
  // new: an exact copy of b, then a fine-tune of c, then one of a
  auto new_model = test::make_safetensors({{"m.a.w", "F32", {100000}, b},
                                           {"m.b.w", "F32", {100000}, test::perturb_f32(c, 1.0, 14)},
                                           {"m.c.w", "F32", {100000}, test::perturb_f32(a, 1.0, 15)}});
  formats::diff_options o;
  o.neural = true;
  auto size = expect_round_trip(old_model, new_model, o);
  // Every weight of the two fine-tunes moved (so the generic delta finds no long matches). Coded
  // against their own old tensors they cost ~263 KB each; paired in file order (m.b.w with b, m.c.w
  // with c) the old weights are of no use and each costs ~332 KB, about what it costs alone.
  EXPECT_LT(size, 600000u) << "the fine-tunes were not coded against their own old tensors";
}

TEST(Synthetic, OnnxRenamedAndAddedTensorsRoundTrip) {
  auto w = test::random_weights_f32(30000, 8);
  auto old_model = test::make_onnx({{"conv.w", "F32", {30000}, w}});
  auto new_model = test::make_onnx({{"conv.weight", "F32", {30000}, w}, {"extra", "F32", {1000}, test::random_weights_f32(1000, 9)}});
  auto size = expect_round_trip(old_model, new_model);
  EXPECT_LT(size, 8000u) << "a renamed tensor must not be resent";
}

TEST(Synthetic, RawBinaryWithInsertionUsesTheGenericDelta) {
  auto base = test::random_weights_f32(300000, 10);
  auto changed = base;
  changed.insert(changed.begin() + 500000, 1000, 0x5a);
  auto size = expect_round_trip(base, changed);
  EXPECT_LT(size, 5000u);
}

TEST(Synthetic, LargerThanOneChunkAndWindowRoundTrips) {
  // 24 MiB of raw data: several 4 MiB gap chunks and references wider than the 16 MiB window.
  auto base = test::random_weights_f32(6u << 20, 11);
  auto changed = test::perturb_f32(base, 0.001, 12);
  auto size = expect_round_trip(base, changed);
  EXPECT_LT(size, changed.size() / 10);
}

TEST(Synthetic, EmptyAndIdenticalFiles) {
  byte_vec empty;
  byte_vec some = test::random_weights_f32(1000, 13);
  expect_round_trip(empty, some);
  expect_round_trip(some, empty);
  expect_round_trip(some, some);
}
