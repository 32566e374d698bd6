// Little-endian integers and LEB128 varints: writing to a vector, reading from a bounded cursor.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mallorn::core {

inline void put_u8(std::vector<std::uint8_t>& out, std::uint8_t v) { out.push_back(v); }
inline void put_le(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}
inline std::uint64_t zigzag(std::int64_t v) { return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63); }
inline std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); }

// Reads from a span; every getter returns nullopt instead of reading past the end.
class byte_cursor {
 public:
  explicit byte_cursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  std::optional<std::uint8_t> u8() {
    if (remaining() < 1) return std::nullopt;
    return bytes_[pos_++];
  }
  std::optional<std::uint64_t> le(int n) {
    if (remaining() < static_cast<std::size_t>(n)) return std::nullopt;
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | bytes_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::optional<std::uint64_t> varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      auto b = u8();
      if (!b) return std::nullopt;
      v |= static_cast<std::uint64_t>(*b & 0x7f) << shift;
      if (!(*b & 0x80)) return v;
    }
    return std::nullopt;  // over-long encoding
  }
  std::optional<std::span<const std::uint8_t>> take(std::uint64_t n) {
    if (remaining() < n) return std::nullopt;
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

}  // namespace mallorn::core
