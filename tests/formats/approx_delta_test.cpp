// The bsdiff-style gap transform: exact round trip, and a real gain on data whose numbers all
// shifted slightly (as flatbuffer offsets do when a model grows).
#include <gtest/gtest.h>

#include <random>

#include "../../formats/src/approx_delta.hpp"
#include "mallorn/core/body_format.hpp"

namespace body = mallorn::core::body;
using mallorn::formats::detail::encode_approx;
using mallorn::formats::detail::suffix_index;

namespace {
std::vector<std::uint8_t> offsets_table(std::size_t n, std::uint32_t shift, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> out;
  std::uint32_t at = 1000;
  for (std::size_t i = 0; i < n; ++i) {
    at += 4 + (rng() % 64) * 4;
    std::uint32_t v = at + shift;
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(v >> (8 * b)));
    for (int b = 0; b < 12; ++b) out.push_back(static_cast<std::uint8_t>(rng()));  // other fields
  }
  return out;
}

std::vector<std::uint8_t> decode(const std::vector<std::uint8_t>& payload, std::span<const std::uint8_t> ref, std::size_t n) {
  body::data_frame f;
  f.tf = body::transform::approx;
  f.out_len = n;
  f.reference.push_back({0, ref.size()});
  f.payload = payload;
  EXPECT_TRUE(body::check_data_frame(f, ref.size()).ok());
  std::vector<std::uint8_t> out;
  auto r = body::decode_payload(f, ref, out);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().what());
  return out;
}
}  // namespace

TEST(ApproxDelta, ShiftedOffsetsBeatExactMatching) {
  auto old_table = offsets_table(20000, 0, 1);
  auto new_table = offsets_table(20000, 52, 1);  // same table, every offset moved by 52 bytes
  new_table.insert(new_table.begin() + 1000, 100, 0x77);
  suffix_index index(old_table);
  auto approx = encode_approx(index, new_table, 19);
  EXPECT_EQ(decode(approx, old_table, new_table.size()), new_table);

  body::data_frame f;
  f.tf = body::transform::prefix;
  f.out_len = new_table.size();
  auto exact = body::encode_payload(f, new_table, old_table, 19);
  EXPECT_LT(approx.size() * 2, exact.size()) << "approx " << approx.size() << " vs zstd " << exact.size();
}

TEST(ApproxDelta, RoundTripsUnrelatedAndEmptyReferences) {
  std::mt19937 rng(3);
  std::vector<std::uint8_t> a(5000), b(7000);
  for (auto& x : a) x = static_cast<std::uint8_t>(rng() % 16);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng() % 16);
  suffix_index index(a);
  EXPECT_EQ(decode(encode_approx(index, b, 3), a, b.size()), b);
  std::vector<std::uint8_t> one{42};
  suffix_index tiny(one);
  EXPECT_EQ(decode(encode_approx(tiny, b, 3), one, b.size()), b);
}

TEST(ApproxDelta, CorruptControlIsRejected) {
  auto old_table = offsets_table(500, 0, 2), new_table = offsets_table(500, 8, 2);
  suffix_index index(old_table);
  auto payload = encode_approx(index, new_table, 3);
  body::data_frame f;
  f.tf = body::transform::approx;
  f.out_len = new_table.size();
  f.reference.push_back({0, old_table.size()});
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < 2; ++i) {  // the section sizes
    auto bad = payload;
    bad[i] ^= 0x40;
    f.payload = bad;
    EXPECT_FALSE(body::decode_payload(f, old_table, out).ok()) << i;
  }
}
