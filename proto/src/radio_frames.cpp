#include "mallorn/proto/radio_frames.hpp"

#include <algorithm>

#include "mallorn/core/bytes.hpp"

namespace mallorn::proto {
namespace {

using core::put_le;
using core::put_u8;

core::error bad(const std::string& what) { return core::make_error(core::errc::invalid_argument, "radio frame: " + what); }

void put_bytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }

struct encoder {
  std::vector<std::uint8_t>& out;
  void operator()(const radio_announce& f) {
    put_u8(out, std::uint8_t(frame_type::announce)), put_le(out, f.addr, 4), put_bytes(out, f.sha256);
    put_le(out, f.free_ram, 4), put_le(out, f.max_block, 2);
  }
  void operator()(const radio_request& f) {
    put_u8(out, std::uint8_t(frame_type::request)), put_le(out, f.addr, 4), put_le(out, f.session, 4);
    put_le(out, f.gen, 2), put_le(out, f.prev_rx, 2), put_le(out, f.first, 4), put_le(out, f.count, 2);
    put_bytes(out, f.bitmap);
  }
  void operator()(const radio_more& f) {
    put_u8(out, std::uint8_t(frame_type::more)), put_le(out, f.addr, 4), put_le(out, f.session, 4);
    put_le(out, f.gen, 2), put_le(out, f.needed, 2), put_le(out, f.rx, 2);
  }
  void operator()(const radio_status& f) {
    put_u8(out, std::uint8_t(frame_type::status)), put_le(out, f.addr, 4), put_le(out, f.session, 4);
    put_u8(out, f.state), put_le(out, f.received, 4), put_u8(out, f.error);
  }
  void operator()(const radio_offer& f) {
    put_u8(out, std::uint8_t(frame_type::offer)), put_le(out, f.addr, 4), put_u8(out, f.status);
    put_le(out, f.session, 4), put_le(out, f.patch_size, 4), put_le(out, f.block_size, 2), put_u8(out, f.frag_size);
    put_bytes(out, f.patch_sha256);
  }
  void operator()(const radio_fragment& f) {
    put_u8(out, std::uint8_t(frame_type::fragment)), put_le(out, f.addr, 4), put_le(out, f.gen, 2), put_le(out, f.index, 2);
    put_bytes(out, f.payload);
  }
  void operator()(const radio_ack& f) {
    put_u8(out, std::uint8_t(frame_type::ack)), put_le(out, f.addr, 4), put_le(out, f.session, 4);
  }
};

template <class T>
T get(core::byte_cursor& in, int n) {
  return static_cast<T>(*in.le(n));  // callers check the total length first
}

void get_bytes(core::byte_cursor& in, std::span<std::uint8_t> out) {
  auto s = in.take(out.size());
  std::copy(s->begin(), s->end(), out.begin());
}

}  // namespace

std::vector<std::uint8_t> encode(const radio_frame& f) {
  std::vector<std::uint8_t> out;
  std::visit(encoder{out}, f);
  return out;
}

core::result<radio_frame> decode_frame(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 5) return bad(std::to_string(bytes.size()) + " bytes, shorter than a header");
  if (bytes.size() > max_frame_size) return bad(std::to_string(bytes.size()) + " bytes, over " + std::to_string(max_frame_size));
  core::byte_cursor in(bytes);
  const auto type = static_cast<frame_type>(*in.u8());
  const auto addr = get<std::uint32_t>(in, 4);
  auto exact = [&](std::size_t n) { return bytes.size() == n; };
  switch (type) {
    case frame_type::announce: {
      if (!exact(43)) return bad("announce must be 43 bytes");
      radio_announce f{addr};
      get_bytes(in, f.sha256);
      f.free_ram = get<std::uint32_t>(in, 4);
      f.max_block = get<std::uint16_t>(in, 2);
      return radio_frame{f};
    }
    case frame_type::request: {
      if (bytes.size() < 19) return bad("request shorter than 19 bytes");
      radio_request f{addr, get<std::uint32_t>(in, 4), get<std::uint16_t>(in, 2), get<std::uint16_t>(in, 2)};
      f.first = get<std::uint32_t>(in, 4);
      f.count = get<std::uint16_t>(in, 2);
      if (f.count == 0 || in.remaining() != (f.count + 7u) / 8) return bad("request bitmap does not match its count");
      auto bits = in.take(in.remaining());
      f.bitmap.assign(bits->begin(), bits->end());
      if (f.count % 8 && (f.bitmap.back() >> (f.count % 8)) != 0) return bad("request has bits set past count");
      if (std::all_of(f.bitmap.begin(), f.bitmap.end(), [](std::uint8_t b) { return b == 0; }))
        return bad("request names no block");
      return radio_frame{std::move(f)};
    }
    case frame_type::more: {
      if (!exact(15)) return bad("more must be 15 bytes");
      radio_more f{addr, get<std::uint32_t>(in, 4), get<std::uint16_t>(in, 2), get<std::uint16_t>(in, 2),
                   get<std::uint16_t>(in, 2)};
      return radio_frame{f};
    }
    case frame_type::status: {
      if (!exact(15)) return bad("status must be 15 bytes");
      radio_status f{addr, get<std::uint32_t>(in, 4), get<std::uint8_t>(in, 1), get<std::uint32_t>(in, 4),
                     get<std::uint8_t>(in, 1)};
      if (f.state > 3 || f.error > 5) return bad("status has an unknown state or error");
      return radio_frame{f};
    }
    case frame_type::offer: {
      if (!exact(49)) return bad("offer must be 49 bytes");
      radio_offer f{addr, get<std::uint8_t>(in, 1), get<std::uint32_t>(in, 4), get<std::uint32_t>(in, 4),
                    get<std::uint16_t>(in, 2), get<std::uint8_t>(in, 1)};
      get_bytes(in, f.patch_sha256);
      if (f.status > 3) return bad("offer has an unknown status");
      return radio_frame{f};
    }
    case frame_type::fragment: {
      if (bytes.size() <= fragment_header_size) return bad("fragment without payload");
      radio_fragment f{addr, get<std::uint16_t>(in, 2), get<std::uint16_t>(in, 2), bytes.subspan(fragment_header_size)};
      if (f.index == 0) return bad("fragment index 0");
      return radio_frame{f};
    }
    case frame_type::ack: {
      if (!exact(9)) return bad("ack must be 9 bytes");
      return radio_frame{radio_ack{addr, get<std::uint32_t>(in, 4)}};
    }
  }
  return bad("unknown type " + std::to_string(bytes[0]));
}

std::uint32_t frame_addr(const radio_frame& f) {
  return std::visit([](const auto& x) { return x.addr; }, f);
}

const char* device_error_name(device_error e) {
  switch (e) {
    case device_error::none: return "";
    case device_error::patch_hash: return "patch_hash_mismatch";
    case device_error::apply: return "apply_failed";
    case device_error::flash: return "flash_error";
    case device_error::too_large: return "patch_too_large";
    case device_error::protocol: return "protocol_error";
  }
  return "unknown";
}

}  // namespace mallorn::proto
