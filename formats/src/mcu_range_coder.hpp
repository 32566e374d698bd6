// Internal: the encoder half of the mcu body's adaptive binary range coder. The exact mirror of
// firmware/src/ml_rc.h (same probability width, shift and normalisation), so the constants
// below must change together with it.
#pragma once
#include <cstdint>
#include <vector>

namespace mallorn::formats::detail {

inline constexpr unsigned mcu_prob_bits = 11;
inline constexpr std::uint16_t mcu_prob_init = 1u << (mcu_prob_bits - 1);
inline constexpr unsigned mcu_prob_shift = 4;

class mcu_range_encoder {
 public:
  void bit(std::uint16_t& p, unsigned b) {
    std::uint32_t bound = (range_ >> mcu_prob_bits) * p;
    if (b == 0) {
      range_ = bound;
      p = static_cast<std::uint16_t>(p + (((1u << mcu_prob_bits) - p) >> mcu_prob_shift));
    } else {
      low_ += bound;
      range_ -= bound;
      p = static_cast<std::uint16_t>(p - (p >> mcu_prob_shift));
    }
    normalize();
  }
  void direct(unsigned b) {
    range_ >>= 1;
    if (b) low_ += range_;
    normalize();
  }
  // The coded bytes, minus the leading byte every LZMA-style stream starts with (always 0).
  std::vector<std::uint8_t> finish() {
    for (int i = 0; i < 5; ++i) shift_low();
    out_.erase(out_.begin());
    return std::move(out_);
  }

 private:
  void normalize() {
    if (range_ < (1u << 24)) {
      range_ <<= 8;
      shift_low();
    }
  }
  void shift_low() {
    if (static_cast<std::uint32_t>(low_) < 0xFF000000u || (low_ >> 32) != 0) {
      auto carry = static_cast<std::uint8_t>(low_ >> 32);
      std::uint8_t temp = cache_;
      do {
        out_.push_back(static_cast<std::uint8_t>(temp + carry));
        temp = 0xFF;
      } while (--cache_size_ != 0);
      cache_ = static_cast<std::uint8_t>(low_ >> 24);
    }
    ++cache_size_;
    low_ = (low_ & 0x00FFFFFFu) << 8;
  }

  std::uint64_t low_ = 0;
  std::uint32_t range_ = 0xFFFFFFFFu;
  std::uint8_t cache_ = 0;
  std::uint64_t cache_size_ = 1;
  std::vector<std::uint8_t> out_;
};

}  // namespace mallorn::formats::detail
