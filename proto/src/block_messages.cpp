#include "mallorn/proto/block_messages.hpp"

#include <bit>

#include "mallorn/core/bytes.hpp"

namespace mallorn::proto {
namespace {

core::error malformed(const std::string& what) { return core::make_error(core::errc::invalid_argument, what); }

}  // namespace

std::uint32_t bitmap_request::wanted() const {
  std::uint32_t n = 0;
  for (auto b : bitmap) n += static_cast<std::uint32_t>(std::popcount(b));
  return n;
}

bitmap_request make_bitmap_request(std::uint32_t session, std::uint32_t first, std::uint16_t count,
                                   std::span<const std::uint32_t> indices) {
  bitmap_request r{session, first, count, std::vector<std::uint8_t>((count + 7) / 8, 0)};
  for (auto i : indices)
    if (i >= first && i - first < count) r.bitmap[(i - first) / 8] |= static_cast<std::uint8_t>(1u << ((i - first) % 8));
  return r;
}

std::vector<std::uint8_t> encode(const bitmap_request& r) {
  std::vector<std::uint8_t> out;
  core::put_u8(out, static_cast<std::uint8_t>(payload_kind::request_bitmap));
  core::put_le(out, r.session, 4);
  core::put_le(out, r.first, 4);
  core::put_le(out, r.count, 2);
  out.insert(out.end(), r.bitmap.begin(), r.bitmap.end());
  return out;
}

std::vector<std::uint8_t> encode(const range_request& r) {
  std::vector<std::uint8_t> out;
  core::put_u8(out, static_cast<std::uint8_t>(payload_kind::request_range));
  core::put_le(out, r.session, 4);
  core::put_le(out, r.offset, 4);
  core::put_le(out, r.length, 4);
  return out;
}

std::vector<std::uint8_t> encode_block(std::uint32_t session, std::uint32_t index, std::span<const std::uint8_t> data) {
  std::vector<std::uint8_t> out;
  out.reserve(9 + data.size());
  core::put_u8(out, static_cast<std::uint8_t>(payload_kind::block));
  core::put_le(out, session, 4);
  core::put_le(out, index, 4);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

core::result<block_request> decode_request(std::span<const std::uint8_t> payload) {
  core::byte_cursor in(payload);
  auto kind = in.u8();
  auto session = in.le(4);
  if (!kind || !session) return malformed("block request: shorter than its 5-byte header");
  if (*kind == static_cast<std::uint8_t>(payload_kind::request_range)) {
    auto offset = in.le(4), length = in.le(4);
    if (!offset || !length || in.remaining() != 0) return malformed("range request: expected exactly 13 bytes");
    if (*length == 0) return malformed("range request: length 0");
    return block_request{range_request{static_cast<std::uint32_t>(*session), static_cast<std::uint32_t>(*offset),
                                       static_cast<std::uint32_t>(*length)}};
  }
  if (*kind != static_cast<std::uint8_t>(payload_kind::request_bitmap))
    return malformed("block request: unknown kind " + std::to_string(*kind));
  auto first = in.le(4), count = in.le(2);
  if (!first || !count) return malformed("bitmap request: shorter than its 11-byte header");
  if (*count == 0 || *count > max_request_blocks)
    return malformed("bitmap request: count " + std::to_string(*count) + " outside 1.." + std::to_string(max_request_blocks));
  const std::size_t bytes = (*count + 7) / 8;
  if (in.remaining() != bytes)
    return malformed("bitmap request: " + std::to_string(in.remaining()) + " bitmap bytes for " + std::to_string(*count) +
                     " blocks (expected " + std::to_string(bytes) + ")");
  bitmap_request r{static_cast<std::uint32_t>(*session), static_cast<std::uint32_t>(*first),
                   static_cast<std::uint16_t>(*count), {}};
  auto bits = in.take(bytes);
  r.bitmap.assign(bits->begin(), bits->end());
  // Bits past `count` must be clear: a sender that sets them has a different idea of the window.
  if (*count % 8 && (r.bitmap.back() >> (*count % 8)) != 0) return malformed("bitmap request: bits set past count");
  if (r.wanted() == 0) return malformed("bitmap request: no block requested");
  return block_request{std::move(r)};
}

core::result<block_message> decode_block(std::span<const std::uint8_t> payload) {
  core::byte_cursor in(payload);
  auto kind = in.u8();
  auto session = in.le(4), index = in.le(4);
  if (!kind || !session || !index) return malformed("block: shorter than its 9-byte header");
  if (*kind != static_cast<std::uint8_t>(payload_kind::block)) return malformed("block: unknown kind " + std::to_string(*kind));
  if (in.remaining() == 0) return malformed("block: no data");
  return block_message{static_cast<std::uint32_t>(*session), static_cast<std::uint32_t>(*index), payload.subspan(9)};
}

core::result<std::vector<std::uint32_t>> requested_blocks(const block_request& req, std::uint32_t blocks,
                                                          std::uint32_t block_size, std::uint64_t patch_size) {
  std::vector<std::uint32_t> out;
  if (const auto* b = std::get_if<bitmap_request>(&req)) {
    for (std::uint32_t i = 0; i < b->count; ++i) {
      if (!b->wants(i)) continue;
      const std::uint64_t index = std::uint64_t(b->first) + i;
      if (index >= blocks) return malformed("request names block " + std::to_string(index) + " of " + std::to_string(blocks));
      out.push_back(static_cast<std::uint32_t>(index));
    }
    return out;
  }
  const auto& r = std::get<range_request>(req);
  const std::uint64_t end = std::uint64_t(r.offset) + r.length;
  if (end > patch_size) return malformed("range request ends at " + std::to_string(end) + ", past the patch size " + std::to_string(patch_size));
  const std::uint64_t last = (end - 1) / block_size;
  if (last - r.offset / block_size >= max_request_blocks) return malformed("range request spans more than " + std::to_string(max_request_blocks) + " blocks");
  for (std::uint64_t i = r.offset / block_size; i <= last; ++i) out.push_back(static_cast<std::uint32_t>(i));
  return out;
}

}  // namespace mallorn::proto
