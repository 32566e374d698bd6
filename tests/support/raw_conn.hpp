// A raw TCP connection from a chosen loopback source address, for tests that need what curl is
// too polite to do (half a request, a hostile byte stream) or many connections at once.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

namespace mallorn::test {

// A raw TCP connection from a chosen loopback source address.
class raw_conn {
 public:
  raw_conn(int port, const std::string& from = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
    (void)::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
  }
  ~raw_conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_conn(raw_conn&& o) noexcept : fd_(std::exchange(o.fd_, -1)), connected_(o.connected_) {}
  raw_conn(const raw_conn&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Reads until the peer closes or `limit` passes. `closed` says which.
  std::string read_all(std::chrono::milliseconds limit, bool& closed) {
    std::string out;
    closed = false;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  // True if the server closed (or reset) the connection within `limit`, data discarded.
  bool closed_within(std::chrono::milliseconds limit) {
    bool closed = false;
    (void)read_all(limit, closed);
    return closed;
  }
  // One keep-alive request/response (Content-Length bodies only): status, or 0 if the
  // connection failed.
  int request(const std::string& head_and_body, std::string* body = nullptr, std::string* headers = nullptr) {
    if (!send(head_and_body)) return 0;
    std::string in;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != std::string::npos) {
        auto lower = in.substr(0, header_end);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (auto p = lower.find("content-length:"); p != std::string::npos) length = std::stoull(lower.substr(p + 15));
      }
      if (header_end != std::string::npos && in.size() >= header_end + 4 + length) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return 0;
      in.append(buf, static_cast<std::size_t>(n));
    }
    if (header_end == std::string::npos || (in.compare(0, 9, "HTTP/1.1 ") != 0 && in.compare(0, 9, "HTTP/1.0 ") != 0)) return 0;
    if (body) *body = in.substr(header_end + 4, length);
    if (headers) *headers = in.substr(0, header_end);
    return std::atoi(in.c_str() + 9);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace mallorn::test
