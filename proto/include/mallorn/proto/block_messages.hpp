// The binary MQTT payloads that move patch bytes (docs/protocol.md, "Block payloads"): a device's
// block request and the server's block message. Little-endian, fixed layouts, parsed strictly:
// a payload of the wrong length, an unknown kind or stray bits is an invalid_argument error.
#pragma once
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

// First byte of every binary payload.
enum class payload_kind : std::uint8_t {
  request_bitmap = 0x01,  // device -> server: blocks first..first+count-1 whose bit is set
  request_range = 0x02,   // device -> server: the blocks covering [offset, offset+length)
  block = 0x81,           // server -> device: one block
};

// Largest bitmap one request may carry (the server answers at most this many blocks at once).
inline constexpr std::uint32_t max_request_blocks = 4096;

struct bitmap_request {
  std::uint32_t session = 0;
  std::uint32_t first = 0;
  std::uint16_t count = 0;           // 1..max_request_blocks bits follow
  std::vector<std::uint8_t> bitmap;  // ceil(count/8) bytes, bit i = byte i/8, bit (i%8) (LSB first)
  bool wants(std::uint32_t i) const { return i < count && (bitmap[i / 8] >> (i % 8)) & 1; }
  std::uint32_t wanted() const;  // number of set bits
};

struct range_request {
  std::uint32_t session = 0;
  std::uint32_t offset = 0, length = 0;  // length >= 1
};

using block_request = std::variant<bitmap_request, range_request>;

struct block_message {
  std::uint32_t session = 0;
  std::uint32_t index = 0;
  std::span<const std::uint8_t> data;  // points into the decoded payload
};

// Builds a bitmap request for the listed block indices (all within first..first+count-1).
bitmap_request make_bitmap_request(std::uint32_t session, std::uint32_t first, std::uint16_t count,
                                   std::span<const std::uint32_t> indices);

std::vector<std::uint8_t> encode(const bitmap_request& r);
std::vector<std::uint8_t> encode(const range_request& r);
std::vector<std::uint8_t> encode_block(std::uint32_t session, std::uint32_t index, std::span<const std::uint8_t> data);

core::result<block_request> decode_request(std::span<const std::uint8_t> payload);
core::result<block_message> decode_block(std::span<const std::uint8_t> payload);

// The block indices a request names for a patch of `blocks` blocks of `block_size` bytes;
// invalid_argument when it names anything past the end.
core::result<std::vector<std::uint32_t>> requested_blocks(const block_request& r, std::uint32_t blocks,
                                                          std::uint32_t block_size, std::uint64_t patch_size);

}  // namespace mallorn::proto
