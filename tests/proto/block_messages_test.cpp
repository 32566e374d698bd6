// The binary MQTT block payloads: round trips, and malformed payloads refused with an error.
#include <gtest/gtest.h>

#include <random>

#include "mallorn/proto/block_map.hpp"
#include "mallorn/proto/block_messages.hpp"

using namespace mallorn::proto;

TEST(BlockMessages, BitmapRequestRoundTrip) {
  const std::vector<std::uint32_t> want = {10, 11, 15, 27};
  auto r = make_bitmap_request(0xdeadbeef, 10, 18, want);
  auto bytes = encode(r);
  ASSERT_EQ(bytes.size(), 11u + 3);
  auto back = decode_request(bytes);
  ASSERT_TRUE(back.ok()) << back.err().what();
  const auto& b = std::get<bitmap_request>(*back);
  EXPECT_EQ(b.session, 0xdeadbeefu);
  EXPECT_EQ(b.wanted(), 4u);
  auto blocks = requested_blocks(*back, 100, 512, 51200);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(*blocks, want);
}

TEST(BlockMessages, RangeRequestCoversItsBlocks) {
  auto bytes = encode(range_request{7, 1000, 2100});
  auto back = decode_request(bytes);
  ASSERT_TRUE(back.ok());
  auto blocks = requested_blocks(*back, 10, 1024, 10000);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(*blocks, (std::vector<std::uint32_t>{0, 1, 2, 3}));  // bytes 1000..3099
  EXPECT_FALSE(requested_blocks(*back, 2, 1024, 2048).ok());  // ends past the patch
}

TEST(BlockMessages, MalformedRequestsAreRefused) {
  auto good = encode(make_bitmap_request(1, 0, 12, std::vector<std::uint32_t>{0, 11}));
  ASSERT_TRUE(decode_request(good).ok());
  auto refuse = [](std::vector<std::uint8_t> b, const char* why) { EXPECT_FALSE(decode_request(b).ok()) << why; };
  refuse({}, "empty");
  refuse({0x01, 1, 0}, "truncated header");
  auto extra = good;
  extra.push_back(0);
  refuse(extra, "trailing byte");
  auto shorter = good;
  shorter.pop_back();
  refuse(shorter, "missing bitmap byte");
  auto stray = good;
  stray.back() |= 0x80;  // bit 15 of a 12-block window
  refuse(stray, "bits past count");
  auto none = encode(make_bitmap_request(1, 0, 12, std::vector<std::uint32_t>{}));
  refuse(none, "no block requested");
  auto zero = good;
  zero[9] = zero[10] = 0;
  refuse(zero, "count 0");
  auto kind = good;
  kind[0] = 0x7f;
  refuse(kind, "unknown kind");
  refuse(encode(range_request{1, 0, 0}), "empty range");
  auto past = decode_request(encode(make_bitmap_request(1, 8, 4, std::vector<std::uint32_t>{11})));
  ASSERT_TRUE(past.ok());
  EXPECT_FALSE(requested_blocks(*past, 10, 64, 640).ok());  // block 11 of 10
}

TEST(BlockMessages, BlockRoundTripAndRefusals) {
  const std::vector<std::uint8_t> data = {1, 2, 3, 4, 5};
  auto bytes = encode_block(42, 9, data);
  auto back = decode_block(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->session, 42u);
  EXPECT_EQ(back->index, 9u);
  EXPECT_EQ(std::vector<std::uint8_t>(back->data.begin(), back->data.end()), data);
  EXPECT_FALSE(decode_block(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 9)).ok());  // no data
  EXPECT_FALSE(decode_block(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 4)).ok());
  bytes[0] = 0x01;
  EXPECT_FALSE(decode_block(bytes).ok());
}

TEST(BlockMessages, RandomBytesNeverCrashTheDecoders) {
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> b(rng() % 40);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    if (!b.empty() && i % 2) b[0] = static_cast<std::uint8_t>(i % 4 == 1 ? 0x01 : 0x81);
    auto r = decode_request(b);
    if (r.ok()) {
      auto blocks = requested_blocks(*r, 1000, 100, 100000);
      (void)blocks;
    }
    (void)decode_block(b);
  }
}

TEST(BlockMap, WindowsAskOnlyForMissingBlocks) {
  block_map map(10 * 1000 + 17, 1000);
  ASSERT_EQ(map.blocks(), 11u);
  EXPECT_EQ(map.length_of(10), 17u);
  EXPECT_EQ(map.next_window(4, 256, 1 << 20), (std::vector<std::uint32_t>{0, 1, 2, 3}));
  for (auto i : {0u, 2u, 3u, 5u}) EXPECT_TRUE(map.mark(i));
  EXPECT_FALSE(map.mark(2));
  EXPECT_FALSE(map.mark(11));
  EXPECT_EQ(map.next_window(4, 256, 1 << 20), (std::vector<std::uint32_t>{1, 4, 6, 7}));
  EXPECT_EQ(map.next_window(10, 4, 1 << 20), (std::vector<std::uint32_t>{1, 4}));  // span 1..4
  EXPECT_EQ(map.next_window(10, 256, 2500), (std::vector<std::uint32_t>{1, 4}));   // byte budget
  for (std::uint32_t i = 0; i < 11; ++i) map.mark(i);
  EXPECT_TRUE(map.complete());
  EXPECT_EQ(map.bytes_held(), 10017u);
  EXPECT_TRUE(map.next_window(4, 256, 1 << 20).empty());
}
