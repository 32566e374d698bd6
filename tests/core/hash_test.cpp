#include <gtest/gtest.h>

#include "mallorn/core/hash.hpp"
#include "support/models.hpp"
#include "support/shell.hpp"

using namespace mallorn;

namespace {
std::string hex_of(std::string_view s) {
  return core::to_hex(core::sha256_of({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}));
}
}  // namespace

TEST(Sha256, NistVectors) {
  EXPECT_EQ(hex_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_of(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShotAndResets) {
  std::string msg(100000, 'x');
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>(i * 7);
  core::sha256 h;
  auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(msg.data()), msg.size());
  for (std::size_t at = 0; at < bytes.size(); at += 997) h.update(bytes.subspan(at, std::min<std::size_t>(997, bytes.size() - at)));
  EXPECT_EQ(h.finish(), core::sha256_of(bytes));
  EXPECT_EQ(core::to_hex(h.finish()), hex_of("")) << "finish() resets the context";
}

TEST(Sha256, FileHashMatchesSha256sum) {
  auto file = test::models_dir() / "pairs" / "coral-mnv2-quant_2020-to-2021a" / "old.tflite";
  auto digest = core::sha256_of_file(file);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(core::to_hex(*digest), test::first_word("sha256sum '" + file.string() + "'"));
}

TEST(Hex, RoundTripsAndRejectsJunk) {
  std::array<std::uint8_t, 4> out{};
  EXPECT_TRUE(core::from_hex("00ff7A10", out));
  EXPECT_EQ(core::to_hex(out), "00ff7a10");
  EXPECT_FALSE(core::from_hex("00ff7g10", out));
  EXPECT_FALSE(core::from_hex("00ff", out));
}
