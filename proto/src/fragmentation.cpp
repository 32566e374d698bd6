#include "mallorn/proto/fragmentation.hpp"

#include <algorithm>
#include <bit>

namespace mallorn::proto {

std::uint32_t prbs23(std::uint32_t x) {
  const std::uint32_t b0 = x & 1, b1 = (x >> 5) & 1;
  return (x >> 1) + ((b0 ^ b1) << 22);
}

std::vector<std::uint8_t> parity_row(std::uint32_t n, std::uint32_t m) {
  std::vector<std::uint8_t> row(m, 0);
  if (m == 0) return row;
  if (m == 1) {
    row[0] = 1;
    return row;
  }
  // The generator draws m/2 column indices (repeats allowed) from x = 1 + 1001 n; when m is a
  // power of two it draws modulo m + 1 and rejects m, as the specification does.
  const std::uint32_t extra = std::has_single_bit(m) ? 1 : 0;
  std::uint32_t x = 1 + 1001 * n;
  for (std::uint32_t drawn = 0; drawn < m / 2; ++drawn) {
    std::uint32_t r = m;
    while (r >= m) {
      x = prbs23(x);
      r = x % (m + extra);
    }
    row[r] = 1;
  }
  return row;
}

frag_encoder::frag_encoder(std::span<const std::uint8_t> data, std::uint32_t frag_size)
    : frag_size_(frag_size), m_(static_cast<std::uint32_t>((data.size() + frag_size - 1) / frag_size)) {
  padded_.assign(data.begin(), data.end());
  padded_.resize(std::size_t(m_) * frag_size_, 0);
}

std::vector<std::uint8_t> frag_encoder::fragment(std::uint32_t index) const {
  std::vector<std::uint8_t> out(frag_size_, 0);
  if (index == 0 || m_ == 0) return out;
  if (index <= m_) {
    std::copy_n(padded_.begin() + std::size_t(index - 1) * frag_size_, frag_size_, out.begin());
    return out;
  }
  const auto row = parity_row(index - m_, m_);
  for (std::uint32_t j = 0; j < m_; ++j) {
    if (!row[j]) continue;
    const std::uint8_t* src = padded_.data() + std::size_t(j) * frag_size_;
    for (std::uint32_t k = 0; k < frag_size_; ++k) out[k] ^= src[k];
  }
  return out;
}

frag_decoder::frag_decoder(std::uint32_t fragments, std::uint32_t frag_size)
    : m_(fragments), frag_size_(frag_size), pivots_(fragments) {}

int frag_decoder::lowest_bit(const std::vector<std::uint64_t>& bits) {
  for (std::size_t w = 0; w < bits.size(); ++w)
    if (bits[w]) return static_cast<int>(w * 64 + std::countr_zero(bits[w]));
  return -1;
}

core::result<bool> frag_decoder::add(std::uint32_t index, std::span<const std::uint8_t> payload) {
  if (index == 0) return core::make_error(core::errc::invalid_argument, "fragment index 0 (indices start at 1)");
  if (payload.size() != frag_size_)
    return core::make_error(core::errc::invalid_argument, "fragment of " + std::to_string(payload.size()) +
                                                              " bytes, expected " + std::to_string(frag_size_));
  ++received_;
  if (complete()) return false;
  equation eq{std::vector<std::uint64_t>((m_ + 63) / 64, 0), {payload.begin(), payload.end()}};
  if (index <= m_) {
    eq.bits[(index - 1) / 64] |= 1ull << ((index - 1) % 64);
  } else {
    const auto row = parity_row(index - m_, m_);
    for (std::uint32_t j = 0; j < m_; ++j)
      if (row[j]) eq.bits[j / 64] |= 1ull << (j % 64);
  }
  // Eliminate against stored equations until the lowest bit is a new pivot or nothing is left.
  for (int b = lowest_bit(eq.bits); b >= 0; b = lowest_bit(eq.bits)) {
    auto& p = pivots_[b];
    if (p.bits.empty()) {
      p = std::move(eq);
      if (++rank_ == m_) solve();
      return true;
    }
    for (std::size_t w = 0; w < eq.bits.size(); ++w) eq.bits[w] ^= p.bits[w];
    for (std::uint32_t k = 0; k < frag_size_; ++k) eq.payload[k] ^= p.payload[k];
  }
  return false;
}

void frag_decoder::solve() {
  // Back substitution from the highest pivot: every equation then holds one fragment.
  for (std::uint32_t b = m_; b-- > 0;) {
    auto& eq = pivots_[b];
    for (std::uint32_t j = b + 1; j < m_; ++j) {
      if (!((eq.bits[j / 64] >> (j % 64)) & 1)) continue;
      const auto& known = pivots_[j];
      for (std::uint32_t k = 0; k < frag_size_; ++k) eq.payload[k] ^= known.payload[k];
      eq.bits[j / 64] ^= 1ull << (j % 64);
    }
  }
  solved_ = true;
}

std::vector<std::uint8_t> frag_decoder::data() {
  std::vector<std::uint8_t> out;
  if (!solved_) return out;
  out.reserve(std::size_t(m_) * frag_size_);
  for (const auto& eq : pivots_) out.insert(out.end(), eq.payload.begin(), eq.payload.end());
  return out;
}

}  // namespace mallorn::proto
