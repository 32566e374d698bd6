// The simulated LoRa radio: one transmitter's view of the link (loss, frame size, duty cycle,
// time on air) and the "air" itself, UDP datagrams on loopback between the gateway and devices.
// Time is simulated: a transmission advances the link's clock by its time on air, and the duty
// cycle adds the silence the regulations demand after it (1% in most EU868 sub-bands), so a
// benchmark can say how long an update would take over the air without waiting for it.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::proto {

struct radio_params {
  double loss = 0;                  // probability that a frame is lost, 0..0.9
  std::uint32_t frame_size = 242;   // largest frame, 51..242 bytes (LoRaWAN DR0..DR5/6 range)
  double duty_cycle = 0.01;         // fraction of time the transmitter may be on, (0, 1]
  int spreading_factor = 7;         // for time on air (SF7..SF12)
  std::uint32_t bandwidth_hz = 125000;
  std::uint64_t seed = 1;
};

// Checks the ranges above; invalid_argument naming the field.
core::result<void> validate(const radio_params& p);

// Time on air of one LoRa frame (Semtech SX127x formula: explicit header, CRC on, coding rate
// 4/5, 8 preamble symbols, low data rate optimisation at SF11/SF12 on 125 kHz).
double lora_airtime_s(std::size_t payload_bytes, int spreading_factor, std::uint32_t bandwidth_hz);

struct link_counters {
  std::uint64_t frames = 0, bytes = 0, lost = 0;
  double air_time_s = 0;
  double clock_s = 0;  // simulated time at which the transmitter may send again
};

class radio_link {
 public:
  explicit radio_link(radio_params p);
  // Accounts one transmission; returns whether the receiver hears it. Thread-safe.
  bool transmit(std::size_t bytes);
  link_counters counters() const;
  const radio_params& params() const { return params_; }

 private:
  radio_params params_;
  mutable std::mutex mutex_;
  std::mt19937_64 rng_;
  link_counters c_;
};

// A UDP socket standing in for the radio. Datagrams carry one frame each.
class udp_air {
 public:
  // Binds to 127.0.0.1:port (0 = any free port).
  static core::result<udp_air> open(std::uint16_t port = 0);
  udp_air(udp_air&& o) noexcept;
  udp_air& operator=(udp_air&& o) noexcept;
  ~udp_air();

  std::uint16_t port() const;
  core::result<void> send_to(const sockaddr_in& to, std::span<const std::uint8_t> frame);
  struct datagram {
    sockaddr_in from{};
    std::vector<std::uint8_t> bytes;
  };
  // Waits up to timeout_ms for one datagram; nullopt on timeout.
  std::optional<datagram> receive(int timeout_ms);
  static sockaddr_in loopback(std::uint16_t port);

 private:
  explicit udp_air(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace mallorn::proto
