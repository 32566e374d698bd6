// LZMA-style binary range coder (32-bit range, carry propagation through a cached byte), split from
// the probability model so that the standard profile's context coder (core/src/plane_coder.cpp)
// and the mcu profile's op coder (formats/src/mcu_range_coder.hpp, mirrored by firmware/src/ml_rc.h)
// share one implementation. Callers compute `bound` = the part of the range given to a 0 bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mallorn::core {

class range_encoder {
 public:
  std::uint32_t range() const { return range_; }
  // Codes bit b, the range [0, bound) standing for 0 and [bound, range) for 1.
  void encode(std::uint32_t bound, unsigned b) {
    if (b == 0) {
      range_ = bound;
    } else {
      low_ += bound;
      range_ -= bound;
    }
    normalize();
  }
  // An equiprobable bit, as LZMA codes them: the range halves whatever the bit.
  void direct(unsigned b) {
    range_ >>= 1;
    if (b) low_ += range_;
    normalize();
  }
  // The coded bytes, minus the leading byte every LZMA-style stream starts with (always 0). After
  // the last byte a decoder has read exactly these bytes and its `code` is 0.
  std::vector<std::uint8_t> finish() {
    for (int i = 0; i < 5; ++i) shift_low();
    out_.erase(out_.begin());
    return std::move(out_);
  }

 private:
  void normalize() {
    while (range_ < (1u << 24)) {
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

// The matching decoder over a bounded input. Reading past the end yields zero bytes (never an
// overread); `finished_cleanly()` then tells whether the stream was exactly consumed.
class range_decoder {
 public:
  explicit range_decoder(std::span<const std::uint8_t> in) : p_(in.data()), end_(in.data() + in.size()) {
    for (int i = 0; i < 4; ++i) code_ = code_ << 8 | next();
  }
  std::uint32_t range() const { return range_; }
  unsigned decode(std::uint32_t bound) {
    unsigned b;
    if (code_ < bound) {
      range_ = bound;
      b = 0;
    } else {
      code_ -= bound;
      range_ -= bound;
      b = 1;
    }
    normalize();
    return b;
  }
  unsigned direct() {
    range_ >>= 1;
    unsigned b = code_ >= range_;
    if (b) code_ -= range_;
    normalize();
    return b;
  }
  // True when every input byte was read, none was invented, and the final code is 0 (what the
  // encoder's flush guarantees): any other ending means the stream was damaged.
  bool finished_cleanly() const { return !overrun_ && p_ == end_ && code_ == 0; }

 private:
  void normalize() {
    while (range_ < (1u << 24)) {
      range_ <<= 8;
      code_ = code_ << 8 | next();
    }
  }
  std::uint8_t next() {
    if (p_ == end_) {
      overrun_ = true;
      return 0;
    }
    return *p_++;
  }
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::uint32_t code_ = 0;
  std::uint32_t range_ = 0xFFFFFFFFu;
  bool overrun_ = false;
};

}  // namespace mallorn::core
