// The LoRa gateway: bridges devices on the simulated radio (UDP on loopback) to the MQTT
// protocol. Uplink frames become MQTT messages on the device's topics ("lora-<addr hex>");
// offers become radio offers; the blocks a device requests are fetched from the server over MQTT
// and sent as one TS004 generation: the data fragments, then parity fragments sized to the loss
// the device last reported, then on each "more" just the number of fragments still missing
// (plus the expected loss on them). One transmitter for all devices, so one duty-cycle clock.
#pragma once
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/fragmentation.hpp"
#include "mallorn/proto/mqtt_client.hpp"
#include "mallorn/proto/radio_frames.hpp"
#include "mallorn/proto/radio_link.hpp"

namespace mallorn::proto {

struct gateway_options {
  std::string broker;
  std::string client_id = "mallorn-lora-gateway";
  std::string prefix = "mallorn/v1";
  std::uint16_t radio_port = 0;  // 0: any free port (see radio_port())
  radio_params radio;            // downlink loss, frame size, duty cycle
  double assumed_loss = 0.1;     // parity budget before a device reported any loss
  std::uint16_t max_block = 1024;
  std::filesystem::path stats_file;  // JSON, rewritten after every finished update and at exit
  // 0 debug, 1 info, 2 warn, 3 error.
  std::function<void(int level, const std::string& line)> log;
};

class lora_gateway {
 public:
  explicit lora_gateway(gateway_options opts);
  ~lora_gateway();
  core::result<void> start();
  std::uint16_t radio_port() const;
  // Serves until stop(); thread-safe stop.
  void run();
  void stop() { stopping_ = true; }
  std::string stats_json() const;

 private:
  struct device;
  struct mqtt_in {
    std::string topic;
    std::vector<std::uint8_t> payload;
  };
  device& device_for(std::uint32_t addr, const sockaddr_in& from);
  void on_uplink(const udp_air::datagram& d);
  void on_mqtt(const mqtt_in& m);
  void start_generation(device& d, const radio_request& r);
  void send_generation(device& d);
  void send_parity(device& d, std::uint32_t count);
  void send_frame(device& d, const radio_frame& f);
  std::uint32_t parity_budget(const device& d, std::uint32_t needed) const;
  void tick();
  void write_stats() const;
  void log(int level, const std::string& line) const;

  gateway_options opts_;
  std::optional<udp_air> air_;
  std::unique_ptr<radio_link> downlink_;
  std::unique_ptr<mqtt_client> mqtt_;
  std::map<std::uint32_t, std::unique_ptr<device>> devices_;
  std::map<std::string, std::uint32_t> by_id_;
  struct queue;
  std::unique_ptr<queue> inbox_;
  std::atomic<bool> stopping_{false};
};

// "lora-0a1b2c3d"
std::string lora_device_id(std::uint32_t addr);

}  // namespace mallorn::proto
