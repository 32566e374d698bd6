// The JSON control messages on MQTT (docs/protocol.md, "Control payloads"): the device's
// announce, the server's offer and the device's status reports. Parsers check types and limits
// and return invalid_argument with the offending field named.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

struct announce_msg {
  std::string model;     // optional: narrows the lookup
  std::string sha256;    // hex of the running model (preferred) ...
  std::string short_id;  // ... or the fingerprint's 16-hex short id
  std::string version;   // informational
  std::string channel;   // optional release channel
  std::uint32_t free_ram = 0;   // bytes the updater may use
  std::uint32_t max_block = 0;  // largest block payload the device accepts (64..65535)
};

enum class offer_status { ready, up_to_date, wait, unavailable };
const char* offer_status_name(offer_status s);

struct offer_msg {
  offer_status status = offer_status::unavailable;
  std::uint32_t session = 0;  // echoed in requests and blocks; changes with every offer
  std::string model, target_version, target_sha256, patch_id, patch_sha256, reason;
  std::uint64_t target_size = 0, patch_size = 0;
  std::uint32_t block_size = 0, blocks = 0;
  std::uint32_t retry_after = 0;  // seconds, with status wait
  bool is_signed = false;
};

enum class device_state { downloading, verifying, committed, failed };
const char* device_state_name(device_state s);

struct status_msg {
  std::uint32_t session = 0;
  device_state state = device_state::downloading;
  std::uint64_t received = 0, total = 0;  // patch bytes
  std::string from_version, to_version, error;
  bool final() const { return state == device_state::committed || state == device_state::failed; }
};

std::string to_json(const announce_msg& m);
std::string to_json(const offer_msg& m);
std::string to_json(const status_msg& m);

core::result<announce_msg> parse_announce(std::span<const std::uint8_t> payload);
core::result<offer_msg> parse_offer(std::span<const std::uint8_t> payload);
core::result<status_msg> parse_status(std::span<const std::uint8_t> payload);

// Control payloads are small; anything larger is refused before parsing.
inline constexpr std::size_t max_control_payload = 4096;

}  // namespace mallorn::proto
