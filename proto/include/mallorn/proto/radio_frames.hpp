// Frames on the (simulated) LoRa link between a device and the gateway (docs/protocol.md,
// "LoRa frames"). Binary, little-endian, at most 51..242 bytes: JSON does not fit a radio frame,
// so the gateway translates these to and from the MQTT payloads. Every frame starts with its type
// and the device address (like a LoRaWAN DevAddr; on MQTT the device is "lora-<addr hex>").
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

enum class frame_type : std::uint8_t {
  announce = 0x10,  // uplink
  request = 0x11,   // uplink: open generation `gen` over the blocks in the bitmap
  more = 0x12,      // uplink: generation `gen` still lacks `needed` independent fragments
  status = 0x13,    // uplink
  offer = 0x20,     // downlink
  fragment = 0x21,  // downlink: fragment `index` of generation `gen` (TS004 numbering)
  ack = 0x22,       // downlink: the final status of `session` reached the server side
};

inline constexpr std::size_t min_frame_size = 51, max_frame_size = 242;
inline constexpr std::size_t fragment_header_size = 9;

struct radio_announce {
  std::uint32_t addr = 0;
  std::array<std::uint8_t, 32> sha256{};
  std::uint32_t free_ram = 0;
  std::uint16_t max_block = 0;
};
struct radio_request {
  std::uint32_t addr = 0, session = 0;
  std::uint16_t gen = 0;
  std::uint16_t prev_rx = 0;  // fragments the device heard of its previous generation (loss estimate)
  std::uint32_t first = 0;
  std::uint16_t count = 0;
  std::vector<std::uint8_t> bitmap;  // as in bitmap_request
};
struct radio_more {
  std::uint32_t addr = 0, session = 0;
  std::uint16_t gen = 0, needed = 0, rx = 0;
};
struct radio_status {
  std::uint32_t addr = 0, session = 0;
  std::uint8_t state = 0;  // device_state
  std::uint32_t received = 0;
  std::uint8_t error = 0;  // 0 none, else a device_error
};
struct radio_offer {
  std::uint32_t addr = 0;
  std::uint8_t status = 0;  // offer_status
  std::uint32_t session = 0;
  std::uint32_t patch_size = 0;  // with status wait: retry_after seconds
  std::uint16_t block_size = 0;
  std::uint8_t frag_size = 0;  // fragment payload bytes the gateway will send
  std::array<std::uint8_t, 32> patch_sha256{};
};
struct radio_fragment {
  std::uint32_t addr = 0;
  std::uint16_t gen = 0, index = 0;
  std::span<const std::uint8_t> payload;  // points into the decoded frame
};

struct radio_ack {
  std::uint32_t addr = 0, session = 0;
};

using radio_frame =
    std::variant<radio_announce, radio_request, radio_more, radio_status, radio_offer, radio_fragment, radio_ack>;

std::vector<std::uint8_t> encode(const radio_frame& f);
// invalid_argument for an unknown type, a wrong length or a frame over max_frame_size.
core::result<radio_frame> decode_frame(std::span<const std::uint8_t> bytes);
std::uint32_t frame_addr(const radio_frame& f);

// Why a device failed, in one byte on the radio and as text on MQTT.
enum class device_error : std::uint8_t { none = 0, patch_hash = 1, apply = 2, flash = 3, too_large = 4, protocol = 5 };
const char* device_error_name(device_error e);

}  // namespace mallorn::proto
