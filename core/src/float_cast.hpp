// IEEE-754 conversions used to predict a tensor whose dtype changed (f32 <-> f16/bf16).
// Round-to-nearest-even, as numpy/PyTorch do, so a plain re-cast leaves an all-zero residual.
#pragma once
#include <cstdint>
#include <cstring>

namespace mallorn::core::detail {

inline std::uint32_t f32_bits(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline std::uint16_t f32_to_f16(std::uint32_t x) {
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t exp = (x >> 23) & 0xffu;
  std::uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                                        // subnormal or zero
    if (e < -10) return static_cast<std::uint16_t>(sign);
    man |= 0x800000u;
    int shift = 14 - e;
    std::uint32_t half = 1u << (shift - 1);
    std::uint32_t r = man >> shift;
    std::uint32_t rem = man & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t r = (static_cast<std::uint32_t>(e) << 10) | (man >> 13);
  std::uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;  // may carry into exponent: correct
  return static_cast<std::uint16_t>(sign | r);
}

inline std::uint32_t f16_to_f32(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return sign | 0x7f800000u | (man << 13);
  if (exp == 0) {
    if (man == 0) return sign;
    int e = -1;
    do { ++e; man <<= 1; } while (!(man & 0x400u));
    return sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  return sign | ((exp - 15 + 127) << 23) | (man << 13);
}

inline std::uint16_t f32_to_bf16(std::uint32_t x) {
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  std::uint32_t lsb = (x >> 16) & 1u;
  return static_cast<std::uint16_t>((x + 0x7fffu + lsb) >> 16);
}

inline std::uint32_t bf16_to_f32(std::uint16_t b) { return static_cast<std::uint32_t>(b) << 16; }

}  // namespace mallorn::core::detail
