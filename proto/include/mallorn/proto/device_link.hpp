// How a simulated device talks to the server: over MQTT directly (mqtt_device_link) or through
// the LoRa gateway (lora_device_link, which hides fragmentation and FEC). The device logic
// (mcu_device) only announces, requests windows of blocks, reports and waits for events.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/block_map.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/radio_link.hpp"

namespace mallorn::proto {

struct link_event {
  enum class kind { offer, block, server_online } what = kind::offer;
  offer_msg offer;
  std::uint32_t session = 0, index = 0;
  std::vector<std::uint8_t> data;
};

// What one request should cover.
struct window_limits {
  std::uint32_t max_blocks = 32;
  std::uint32_t max_span = 256;  // indices one bitmap can name
  std::uint64_t max_bytes = 64 << 10;
};

// Traffic a link saw, for the device's --json result.
struct link_stats {
  std::uint64_t messages_out = 0, bytes_out = 0, messages_in = 0, bytes_in = 0;
  std::uint64_t lost_out = 0;  // radio only: uplink frames the simulated radio dropped
};

class device_link {
 public:
  virtual ~device_link() = default;
  virtual core::result<void> connect(std::chrono::milliseconds timeout) = 0;
  virtual core::result<void> announce(const announce_msg& m) = 0;
  // Asks for `blocks` (ascending, within one window of `map`) of session `session`.
  virtual core::result<void> request(std::uint32_t session, std::span<const std::uint32_t> blocks, const block_map& map) = 0;
  virtual core::result<void> report(const status_msg& m) = 0;
  // The next event, or nullopt after `timeout` without one.
  virtual std::optional<link_event> next(std::chrono::milliseconds timeout) = 0;
  virtual window_limits window(std::uint32_t block_size) const = 0;
  // How long to wait for a window before asking again for what is still missing.
  virtual std::chrono::milliseconds request_timeout() const = 0;
  virtual link_stats stats() const = 0;
  virtual void close() = 0;
};

struct mqtt_link_options {
  std::string broker, device_id, prefix = "mallorn/v1";
};
std::unique_ptr<device_link> make_mqtt_link(const mqtt_link_options& opts);

struct lora_link_options {
  std::uint16_t gateway_port = 0;  // the gateway's UDP port on 127.0.0.1
  std::uint32_t addr = 0;          // device address; on MQTT the device is "lora-<addr hex>"
  radio_params radio;              // uplink loss/duty cycle
  std::uint32_t max_fragments = 256;  // data fragments per generation the device can decode
};
std::unique_ptr<device_link> make_lora_link(const lora_link_options& opts);

}  // namespace mallorn::proto
