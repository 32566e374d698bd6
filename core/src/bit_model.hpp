// The adaptive bit probability shared by the context coder's models (plane_coder.cpp,
// mixing_coder.cpp): p = chance of a 0 in 1/65536, n = how often it was updated (its adaptation
// rate slows from 1/2 towards 1/2^rate_limit as evidence accumulates, so a context seen a few
// times already predicts well and one seen often tracks slow drift). Layout: docs/patch-format.md.
#pragma once
#include <array>
#include <cstdint>

namespace mallorn::core::detail {

struct bit_model {
  std::uint16_t p = 1u << 15;
  std::uint16_t n = 0;
};

inline constexpr unsigned rate_limit = 5;
inline constexpr unsigned max_count = 30;

constexpr std::array<std::uint8_t, max_count + 1> rate_shifts() {
  std::array<std::uint8_t, max_count + 1> s{};
  // shift ~ log2(n + 1.5), at least 1, at most rate_limit
  for (unsigned n = 0; n <= max_count; ++n) {
    unsigned v = 1;
    while (v < rate_limit && (2u << v) <= 2 * n + 3) ++v;  // 2^(v+1) <= 2n+3  <=>  2^v <= n+1.5
    s[n] = static_cast<std::uint8_t>(v);
  }
  return s;
}
inline constexpr auto rate_shift = rate_shifts();

inline void update(bit_model& m, unsigned b) {
  unsigned sh = rate_shift[m.n];
  if (m.n < max_count) ++m.n;
  if (b == 0) m.p = static_cast<std::uint16_t>(m.p + ((65536u - m.p) >> sh));
  else m.p = static_cast<std::uint16_t>(m.p - (m.p >> sh));
}

}  // namespace mallorn::core::detail
