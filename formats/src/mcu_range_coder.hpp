// Internal: the encoder half of the mcu body's adaptive binary range coder. The exact mirror of
// firmware/src/ml_rc.h (same probability width, shift and normalisation), so the constants
// below must change together with it. The range arithmetic itself is core::range_encoder, shared
// with the standard profile's context coder.
#pragma once
#include <cstdint>
#include <vector>

#include "mallorn/core/range_coder.hpp"

namespace mallorn::formats::detail {

inline constexpr unsigned mcu_prob_bits = 11;
inline constexpr std::uint16_t mcu_prob_init = 1u << (mcu_prob_bits - 1);
inline constexpr unsigned mcu_prob_shift = 4;

class mcu_range_encoder {
 public:
  void bit(std::uint16_t& p, unsigned b) {
    rc_.encode((rc_.range() >> mcu_prob_bits) * p, b);
    if (b == 0) p = static_cast<std::uint16_t>(p + (((1u << mcu_prob_bits) - p) >> mcu_prob_shift));
    else p = static_cast<std::uint16_t>(p - (p >> mcu_prob_shift));
  }
  void direct(unsigned b) { rc_.direct(b); }
  // The coded bytes, minus the leading byte every LZMA-style stream starts with (always 0).
  std::vector<std::uint8_t> finish() { return rc_.finish(); }

 private:
  core::range_encoder rc_;
};

}  // namespace mallorn::formats::detail
