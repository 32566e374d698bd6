// Malformed input: every truncation and many bit flips of a real or synthetic file of each format
// end in a clean error or a valid layout — never a crash or a read outside the file.
#include <gtest/gtest.h>

#include "mallorn/core/io.hpp"
#include "mallorn/formats/model.hpp"
#include "support/models.hpp"
#include "support/synthetic_models.hpp"

using namespace mallorn;
using parser = core::result<formats::model_layout> (*)(std::span<const std::uint8_t>);

namespace {
void expect_sane(const core::result<formats::model_layout>& r, std::size_t size) {
  if (!r.ok()) {
    EXPECT_EQ(r.err().code, core::errc::malformed_model);
    return;
  }
  for (const auto& t : r->tensors) EXPECT_LE(t.offset + t.size, size);
}

void sweep(parser p, const std::vector<std::uint8_t>& file) {
  for (std::size_t n = 0; n < file.size(); n += 1 + file.size() / 3000) {
    std::vector<std::uint8_t> cut(file.begin(), file.begin() + n);  // own buffer: ASan sees overreads
    expect_sane(p(cut), cut.size());
  }
  for (std::size_t i = 0; i < file.size(); i += 1 + file.size() / 2000) {
    auto bad = file;
    bad[i] ^= 0xff;
    expect_sane(p(bad), bad.size());
  }
}

std::vector<std::uint8_t> small_onnx() { return test::make_onnx({{"w", "F32", {64}, test::random_weights_f32(64, 1)}}); }
std::vector<std::uint8_t> small_gguf() {
  return test::make_gguf({{"w", 0, {64}, test::random_weights_f32(64, 2)}, {"q", 8, {64}, std::vector<std::uint8_t>(68, 3)}});
}
}  // namespace

TEST(ParserRobustness, Tflite) { sweep(formats::parse_tflite, *core::read_file(test::models_dir() / "pairs/tfm-hello-world-int8/old.tflite")); }
TEST(ParserRobustness, Gguf) { sweep(formats::parse_gguf, small_gguf()); }
TEST(ParserRobustness, Onnx) { sweep(formats::parse_onnx, small_onnx()); }
TEST(ParserRobustness, Safetensors) {
  sweep(formats::parse_safetensors, test::make_safetensors({{"w", "F32", {64}, test::random_weights_f32(64, 3)}}));
}

TEST(ParserRobustness, HostileCountsAndOffsetsAreRejected) {
  auto g = small_gguf();
  g[8] = 0xff, g[15] = 0x7f;  // tensor count 2^63-ish
  EXPECT_FALSE(formats::parse_gguf(g).ok());
  auto st = test::make_safetensors({{"w", "F32", {64}, test::random_weights_f32(64, 3)}});
  std::string bad = "{\"w\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,99999999]}}";
  std::vector<std::uint8_t> f(8);
  f[0] = static_cast<std::uint8_t>(bad.size());
  f.insert(f.end(), bad.begin(), bad.end());
  EXPECT_FALSE(formats::parse_safetensors(f).ok());
  std::vector<std::uint8_t> deep;
  for (int i = 0; i < 200; ++i) deep.insert(deep.begin(), {0x3a, 0x7f});  // nested length-delimited fields
  expect_sane(formats::parse_onnx(deep), deep.size());
}

TEST(ParserRobustness, NonModelsFallBackToRawUnlessStrict) {
  std::vector<std::uint8_t> junk(1000, 0x42);
  auto l = formats::parse_model(junk);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->format, core::model_format::raw);
  auto g = small_gguf();
  g.resize(40);
  EXPECT_TRUE(formats::parse_model(g).ok());
  EXPECT_FALSE(formats::parse_model(g, true).ok());
}
