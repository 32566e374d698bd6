// Round trips on synthetic models of every dtype the parsers know, and GGUF quantized blocks,
// changed the way fine-tunes change them (a few elements nudged), in default and neural modes.
#include <gtest/gtest.h>

#include "support/patch_roundtrip.hpp"
#include "support/synthetic_models.hpp"

using namespace mallorn;
using test::byte_vec;

namespace {
byte_vec random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  byte_vec b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng() % 7 == 0 ? rng() : 0x10 + rng() % 4);  // compressible-ish
  return b;
}
byte_vec nudge(byte_vec b, std::size_t stride) {
  for (std::size_t i = 0; i < b.size(); i += stride) b[i] = static_cast<std::uint8_t>(b[i] + 1);
  return b;
}
void round_trip(const byte_vec& old_model, const byte_vec& new_model, bool neural) {
  formats::diff_options o;
  o.neural = neural;
  auto patch = test::make_patch(old_model, new_model, o);
  auto out = test::apply_in_chunks(old_model, patch, 0);
  ASSERT_TRUE(out.ok()) << out.err().what();
  EXPECT_TRUE(*out == new_model);
  EXPECT_LT(patch.size(), new_model.size());
}
}  // namespace

class SafetensorsDtype : public ::testing::TestWithParam<std::pair<const char*, int>> {};

TEST_P(SafetensorsDtype, RoundTrips) {
  auto [name, width] = GetParam();
  std::size_t elems = 20000;
  auto data = random_bytes(elems * width, width);
  auto old_model = test::make_safetensors({{"t", name, {static_cast<std::int64_t>(elems)}, data}});
  auto new_model = test::make_safetensors({{"t", name, {static_cast<std::int64_t>(elems)}, nudge(data, 61)}});
  round_trip(old_model, new_model, false);
  round_trip(old_model, new_model, true);
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, SafetensorsDtype,
                         ::testing::Values(std::pair{"F32", 4}, std::pair{"F16", 2}, std::pair{"BF16", 2}, std::pair{"F64", 8},
                                           std::pair{"I8", 1}, std::pair{"U8", 1}, std::pair{"I16", 2}, std::pair{"U16", 2},
                                           std::pair{"I32", 4}, std::pair{"U32", 4}, std::pair{"I64", 8}, std::pair{"U64", 8},
                                           std::pair{"BOOL", 1}),
                         [](const auto& info) { return std::string(info.param.first); });

TEST(DtypeChanges, EveryCastDirectionRoundTrips) {
  auto f32 = test::random_weights_f32(30000, 4);
  byte_vec f16(f32.size() / 2), bf16(f32.size() / 2);
  for (std::size_t i = 0; i < f32.size() / 4; ++i) {
    float f;
    std::memcpy(&f, &f32[4 * i], 4);
    _Float16 h = static_cast<_Float16>(f);
    std::memcpy(&f16[2 * i], &h, 2);
    std::memcpy(&bf16[2 * i], &f32[4 * i + 2], 2);  // truncation: the residual must absorb the rounding difference
  }
  auto m32 = test::make_safetensors({{"w", "F32", {30000}, f32}});
  auto m16 = test::make_safetensors({{"w", "F16", {30000}, f16}});
  auto mb16 = test::make_safetensors({{"w", "BF16", {30000}, bf16}});
  round_trip(m32, m16, false);
  round_trip(m16, m32, false);
  round_trip(m32, mb16, true);
  round_trip(mb16, m32, true);
}

class GgufQuant : public ::testing::TestWithParam<std::pair<std::uint32_t, std::uint32_t>> {};

TEST_P(GgufQuant, BlocksRoundTrip) {
  auto [type, block_bytes] = GetParam();
  std::uint64_t elems = 256 * 64;
  std::uint64_t per_block = block_bytes == 18 || block_bytes == 34 ? 32 : 256;
  auto data = random_bytes(elems / per_block * block_bytes, type);
  auto old_model = test::make_gguf({{"blk.0.w", type, {elems}, data}});
  auto new_model = test::make_gguf({{"blk.0.w", type, {elems}, nudge(data, 97)}});
  round_trip(old_model, new_model, true);
}

INSTANTIATE_TEST_SUITE_P(Types, GgufQuant,
                         ::testing::Values(std::pair{2u, 18u}, std::pair{8u, 34u}, std::pair{12u, 144u}, std::pair{14u, 210u}),
                         [](const auto& info) { return "ggml_type_" + std::to_string(info.param.first); });

TEST(DtypeChanges, RequantizationIsPredictedPerChannel) {
  // f32 [64, 1000] weights quantized to int8 with one symmetric scale per output channel, as
  // TFLite's converter does; the patch should carry ~64 scale pairs plus rare rounding fixes.
  const int channels = 64, per = 1000;
  auto f32 = test::random_weights_f32(channels * per, 21);
  byte_vec i8(channels * per), u8(channels * per);
  for (int c = 0; c < channels; ++c) {
    float max_abs = 0;
    for (int i = 0; i < per; ++i) {
      float f;
      std::memcpy(&f, &f32[4 * (c * per + i)], 4);
      max_abs = std::max(max_abs, std::fabs(f));
    }
    float scale = max_abs / 127.f * (1.f + 0.1f * c / channels);
    for (int i = 0; i < per; ++i) {
      float f;
      std::memcpy(&f, &f32[4 * (c * per + i)], 4);
      i8[c * per + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(std::nearbyint(f / scale), -127.f, 127.f)));
      u8[c * per + i] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(f / scale) + 128.f, 0.f, 255.f));
    }
  }
  auto m32 = test::make_safetensors({{"w", "F32", {channels, per}, f32}});
  auto mi8 = test::make_safetensors({{"w", "I8", {channels, per}, i8}});
  auto mu8 = test::make_safetensors({{"w", "U8", {channels, per}, u8}});
  for (const auto* target : {&mi8, &mu8}) {
    auto patch = test::make_patch(m32, *target);
    auto out = test::apply_in_chunks(m32, patch, 0);
    ASSERT_TRUE(out.ok()) << out.err().what();
    EXPECT_TRUE(*out == *target);
    EXPECT_LT(patch.size(), target->size() / 20) << "re-quantization should be predicted, not resent";
  }
}
