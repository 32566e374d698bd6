#include "mallorn/proto/radio_link.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace mallorn::proto {

core::result<void> validate(const radio_params& p) {
  auto bad = [](const std::string& w) { return core::make_error(core::errc::invalid_argument, w); };
  if (!(p.loss >= 0 && p.loss <= 0.9)) return bad("radio loss must be in 0..0.9");
  if (p.frame_size < 51 || p.frame_size > 242) return bad("radio frame size must be in 51..242 bytes");
  if (!(p.duty_cycle > 0 && p.duty_cycle <= 1)) return bad("radio duty cycle must be in (0, 1]");
  if (p.spreading_factor < 7 || p.spreading_factor > 12) return bad("spreading factor must be in 7..12");
  if (p.bandwidth_hz != 125000 && p.bandwidth_hz != 250000 && p.bandwidth_hz != 500000)
    return bad("bandwidth must be 125000, 250000 or 500000 Hz");
  return {};
}

double lora_airtime_s(std::size_t payload_bytes, int sf, std::uint32_t bw) {
  const double t_sym = std::ldexp(1.0, sf) / bw;
  const int low_rate = (sf >= 11 && bw == 125000) ? 1 : 0;
  const int cr = 1, crc = 1, implicit_header = 0;
  const double num = 8.0 * payload_bytes - 4.0 * sf + 28 + 16 * crc - 20 * implicit_header;
  const double symbols = 8 + std::max(std::ceil(num / (4.0 * (sf - 2 * low_rate))) * (cr + 4), 0.0);
  return (8 + 4.25) * t_sym + symbols * t_sym;
}

radio_link::radio_link(radio_params p) : params_(p), rng_(p.seed) {}

bool radio_link::transmit(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  const double air = lora_airtime_s(bytes, params_.spreading_factor, params_.bandwidth_hz);
  ++c_.frames;
  c_.bytes += bytes;
  c_.air_time_s += air;
  // On for `air`, then off long enough that on-time stays within the duty cycle.
  c_.clock_s += air / params_.duty_cycle;
  const bool lost = std::uniform_real_distribution<double>(0, 1)(rng_) < params_.loss;
  if (lost) ++c_.lost;
  return !lost;
}

link_counters radio_link::counters() const {
  std::lock_guard lock(mutex_);
  return c_;
}

core::result<udp_air> udp_air::open(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::make_error(core::errc::io_error, std::string("socket: ") + std::strerror(errno));
  // A generation is sent in one burst; room for a few hundred frames keeps the host from
  // dropping datagrams the simulated radio did not mean to lose.
  int buf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  auto addr = loopback(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return core::make_error(core::errc::io_error, "bind udp 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
  return udp_air(fd);
}

udp_air::udp_air(udp_air&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
udp_air& udp_air::operator=(udp_air&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}
udp_air::~udp_air() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint16_t udp_air::port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

core::result<void> udp_air::send_to(const sockaddr_in& to, std::span<const std::uint8_t> frame) {
  if (::sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0)
    return core::make_error(core::errc::io_error, std::string("sendto: ") + std::strerror(errno));
  return {};
}

std::optional<udp_air::datagram> udp_air::receive(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  datagram d;
  d.bytes.resize(2048);
  socklen_t len = sizeof d.from;
  const auto n = ::recvfrom(fd_, d.bytes.data(), d.bytes.size(), 0, reinterpret_cast<sockaddr*>(&d.from), &len);
  if (n < 0) return std::nullopt;
  d.bytes.resize(static_cast<std::size_t>(n));
  return d;
}

sockaddr_in udp_air::loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

}  // namespace mallorn::proto
