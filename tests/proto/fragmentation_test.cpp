// TS004-style FEC: the parity matrix generator, and a decoder that rebuilds every loss pattern
// the received fragments determine (checked against an independent GF(2) rank computation).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <random>

#include "mallorn/proto/fragmentation.hpp"

using namespace mallorn::proto;

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

// Rank over GF(2) of the rows (bitmasks over at most 64 columns), by plain elimination.
int rank_of(std::vector<std::uint64_t> rows) {
  int rank = 0;
  for (int col = 0; col < 64; ++col) {
    auto pivot = std::find_if(rows.begin() + rank, rows.end(), [&](std::uint64_t r) { return (r >> col) & 1; });
    if (pivot == rows.end()) continue;
    std::swap(*pivot, rows[rank]);
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (i != static_cast<std::size_t>(rank) && ((rows[i] >> col) & 1)) rows[i] ^= rows[rank];
    ++rank;
  }
  return rank;
}

std::uint64_t row_mask(std::uint32_t index, std::uint32_t m) {
  if (index <= m) return 1ull << (index - 1);
  std::uint64_t mask = 0;
  const auto row = parity_row(index - m, m);
  for (std::uint32_t j = 0; j < m; ++j)
    if (row[j]) mask |= 1ull << j;
  return mask;
}

}  // namespace

TEST(Fragmentation, Prbs23StaysWithin23Bits) {
  std::uint32_t x = 1 + 1001 * 5;
  for (int i = 0; i < 10000; ++i) {
    x = prbs23(x);
    ASSERT_LT(x, 1u << 23);
  }
}

TEST(Fragmentation, ParityRowsAreDeterministicAndDrawHalfTheColumns) {
  for (std::uint32_t m : {2u, 3u, 8u, 10u, 64u, 100u, 255u}) {
    for (std::uint32_t n = 1; n <= 20; ++n) {
      const auto row = parity_row(n, m);
      ASSERT_EQ(row.size(), m);
      EXPECT_EQ(row, parity_row(n, m));
      const auto ones = std::count(row.begin(), row.end(), 1);
      EXPECT_GE(ones, 1);
      EXPECT_LE(ones, static_cast<long>(m / 2));  // m/2 draws, repeats allowed
    }
  }
  EXPECT_NE(parity_row(1, 100), parity_row(2, 100));
  EXPECT_EQ(parity_row(1, 1), std::vector<std::uint8_t>{1});
}

TEST(Fragmentation, RoundTripWithoutLoss) {
  const auto data = random_bytes(1000, 1);
  frag_encoder enc(data, 48);
  ASSERT_EQ(enc.fragments(), 21u);  // ceil(1000 / 48), the last one padded
  frag_decoder dec(enc.fragments(), 48);
  for (std::uint32_t i = 1; i <= enc.fragments(); ++i) ASSERT_TRUE(*dec.add(i, enc.fragment(i)));
  ASSERT_TRUE(dec.complete());
  auto out = dec.data();
  ASSERT_EQ(out.size(), 21u * 48);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin()));
  EXPECT_TRUE(std::all_of(out.begin() + 1000, out.end(), [](std::uint8_t b) { return b == 0; }));
}

// Every pattern of up to P lost fragments out of M + P, for small M: the decoder completes exactly
// when the received rows have full rank, and then returns the original data.
TEST(Fragmentation, RecoversEveryDecodableLossPatternWithinTheParityBudget) {
  const std::uint32_t m = 8, p = 5, size = 16;
  const auto data = random_bytes(m * size, 7);
  frag_encoder enc(data, size);
  std::vector<std::vector<std::uint8_t>> frags;
  for (std::uint32_t i = 1; i <= m + p; ++i) frags.push_back(enc.fragment(i));
  int patterns[6] = {}, decodable[6] = {};
  for (std::uint32_t lost = 0; lost < (1u << (m + p)); ++lost) {
    const int k = std::popcount(lost);
    if (k > static_cast<int>(p)) continue;
    ++patterns[k];
    frag_decoder dec(m, size);
    std::vector<std::uint64_t> rows;
    for (std::uint32_t i = 1; i <= m + p; ++i) {
      if ((lost >> (i - 1)) & 1) continue;
      ASSERT_TRUE(dec.add(i, frags[i - 1]).ok());
      rows.push_back(row_mask(i, m));
    }
    const bool full_rank = rank_of(rows) == static_cast<int>(m);
    ASSERT_EQ(dec.complete(), full_rank) << "loss pattern " << lost;
    ASSERT_EQ(dec.missing(), m - static_cast<std::uint32_t>(rank_of(rows)));
    if (full_rank) {
      ++decodable[k];
      ASSERT_EQ(dec.data(), std::vector<std::uint8_t>(data.begin(), data.end())) << "loss pattern " << lost;
    }
  }
  // Every single loss is repaired, nearly every double one. The random low-density code is not
  // MDS: with no fragment to spare (5 of 13 lost) about a third of the patterns are; the device
  // asks for more parity for the rest (RandomLossIsRepairedAndShortfallsAreCounted).
  EXPECT_EQ(decodable[0] + decodable[1], 1 + static_cast<int>(m + p));
  EXPECT_GE(decodable[2] * 10, patterns[2] * 9);
  EXPECT_GE(decodable[5] * 4, patterns[5]);
}

TEST(Fragmentation, AnySingleLostDataFragmentIsRepairedByParity) {
  for (std::uint32_t m : {2u, 5u, 16u, 33u}) {
    const auto data = random_bytes(m * 10, m);
    frag_encoder enc(data, 10);
    for (std::uint32_t lost = 1; lost <= m; ++lost) {
      frag_decoder dec(m, 10);
      for (std::uint32_t i = 1; i <= m + 4 * m && !dec.complete(); ++i)
        if (i != lost) ASSERT_TRUE(dec.add(i, enc.fragment(i)).ok());
      ASSERT_TRUE(dec.complete()) << "m=" << m << " lost=" << lost;
      EXPECT_EQ(dec.data(), data);
    }
  }
}

// Random 10% loss over a generation of 200 fragments with 15% parity: recovered in nearly every
// trial, and where not, `missing()` says how many more parity fragments finish it.
TEST(Fragmentation, RandomLossIsRepairedAndShortfallsAreCounted) {
  const std::uint32_t m = 200, size = 32;
  const auto data = random_bytes(m * size, 3);
  frag_encoder enc(data, size);
  int complete_first_pass = 0;
  for (unsigned trial = 0; trial < 40; ++trial) {
    std::mt19937 rng(trial);
    frag_decoder dec(m, size);
    for (std::uint32_t i = 1; i <= m + 30; ++i)
      if (std::uniform_real_distribution<>(0, 1)(rng) >= 0.1) ASSERT_TRUE(dec.add(i, enc.fragment(i)).ok());
    complete_first_pass += dec.complete();
    // Ask for exactly the missing count again and again, as a device does: it converges.
    std::uint32_t next = m + 31;
    for (int round = 0; round < 10 && !dec.complete(); ++round) {
      const auto want = dec.missing() + 1;
      for (std::uint32_t k = 0; k < want; ++k, ++next)
        if (std::uniform_real_distribution<>(0, 1)(rng) >= 0.1) ASSERT_TRUE(dec.add(next, enc.fragment(next)).ok());
    }
    ASSERT_TRUE(dec.complete()) << "trial " << trial;
    ASSERT_EQ(dec.data(), data);
  }
  EXPECT_GE(complete_first_pass, 30);
}

TEST(Fragmentation, DuplicatesTeachNothingAndBadFragmentsAreRefused) {
  const auto data = random_bytes(100, 9);
  frag_encoder enc(data, 10);
  frag_decoder dec(enc.fragments(), 10);
  EXPECT_TRUE(*dec.add(3, enc.fragment(3)));
  EXPECT_FALSE(*dec.add(3, enc.fragment(3)));
  EXPECT_FALSE(dec.add(0, enc.fragment(1)).ok());
  EXPECT_FALSE(dec.add(1, std::vector<std::uint8_t>(9)).ok());
  EXPECT_EQ(dec.missing(), 9u);
  EXPECT_TRUE(dec.data().empty());  // not complete yet
}
