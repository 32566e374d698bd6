// libFuzzer target: the MQTT and LoRa codecs (proto/) on arbitrary bytes. The first byte picks
// the decoder: the JSON control messages (announce, offer, status), the binary block request and
// block message, the LoRa radio frame, and the TS004 fragment decoder fed a stream of fragments.
// Whatever decodes must encode again into something that decodes.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <variant>

#include "mallorn/proto/block_messages.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/fragmentation.hpp"
#include "mallorn/proto/radio_frames.hpp"

using namespace mallorn::proto;

namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

template <class T>
T take(std::span<const std::uint8_t>& in) {
  T v{};
  const std::size_t n = std::min(sizeof(T), in.size());
  std::memcpy(&v, in.data(), n);
  in = in.subspan(n);
  return v;
}

void fragments(std::span<const std::uint8_t> in) {
  // M (1..64) data fragments of 1..64 bytes, then (index, payload) records until the input ends.
  const std::uint32_t m = take<std::uint8_t>(in) % 64 + 1, frag_size = take<std::uint8_t>(in) % 64 + 1;
  frag_decoder dec(m, frag_size);
  while (in.size() >= 2) {
    const std::uint32_t index = take<std::uint16_t>(in);
    const std::size_t len = std::min<std::size_t>(in.size(), frag_size);
    auto added = dec.add(index, in.first(len));
    in = in.subspan(len);
    if (added && dec.complete() && dec.data().size() != std::size_t{m} * frag_size) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t which = data[0] % 7;
  std::span<const std::uint8_t> in(data + 1, size - 1);
  switch (which) {
    case 0:
      if (auto m = parse_announce(in); m && !parse_announce(bytes_of(to_json(*m)))) std::abort();
      break;
    case 1:
      if (auto m = parse_offer(in); m && !parse_offer(bytes_of(to_json(*m)))) std::abort();
      break;
    case 2:
      if (auto m = parse_status(in); m && !parse_status(bytes_of(to_json(*m)))) std::abort();
      break;
    case 3:
      if (auto r = decode_request(in)) {
        auto again = std::visit([](const auto& req) { return encode(req); }, *r);
        if (!decode_request(again)) std::abort();
        // Ask for the blocks of a patch whose shape comes from the input's last bytes.
        std::span<const std::uint8_t> tail = in.size() > 8 ? in.last(8) : in;
        const std::uint32_t blocks = take<std::uint32_t>(tail) % 100000;
        const std::uint32_t block_size = take<std::uint16_t>(tail) % 4096 + 1;
        if (auto list = requested_blocks(*r, blocks, block_size, std::uint64_t{blocks} * block_size))
          for (auto b : *list)
            if (b >= blocks) std::abort();
      }
      break;
    case 4:
      if (auto b = decode_block(in)) {
        auto again = encode_block(b->session, b->index, b->data);
        if (!decode_block(again)) std::abort();
      }
      break;
    case 5:
      if (auto f = decode_frame(in)) {
        auto again = encode(*f);
        if (again.size() > max_frame_size || !decode_frame(again)) std::abort();
      }
      break;
    case 6:
      fragments(in);
      break;
  }
  return 0;
}
