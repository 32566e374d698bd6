// A TCP proxy on loopback that stands between a client and a real server and misbehaves on
// purpose: it cuts every connection after a number of response bytes (a flaky link, or a server
// that dies mid-transfer), can refuse connections altogether (the server is gone), and counts the
// response body bytes it delivered, so tests can measure what a resumed download fetched twice.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mallorn::test {

class cutting_proxy {
 public:
  explicit cutting_proxy(int upstream_port);
  ~cutting_proxy();
  cutting_proxy(const cutting_proxy&) = delete;
  cutting_proxy& operator=(const cutting_proxy&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Close both sides of a connection once it delivered this many response bytes (0: never).
  void cut_after(std::uint64_t bytes) { cut_after_ = bytes; }
  // Refused: accepted connections are closed at once, as if nothing listened.
  void refuse(bool on) { refuse_ = on; }

  // Response body bytes (after the header block) delivered to clients on connections whose
  // request line starts with `request_prefix` (e.g. "GET /patch/"), over all connections so far.
  std::uint64_t body_bytes(const std::string& request_prefix = "") const;
  // Connections that were cut by cut_after().
  int cuts() const { return cuts_; }
  // Why connecting to the upstream server failed, if it ever did (for failure messages).
  std::string upstream_errors() const;

 private:
  void accept_loop();
  void relay(int client, int upstream);

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<std::uint64_t> cut_after_{0};
  std::atomic<bool> refuse_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> cuts_{0};
  struct exchange {
    std::string request_line;
    std::uint64_t body_bytes = 0;
  };
  mutable std::mutex mutex_;
  std::string upstream_errors_;
  std::vector<exchange> exchanges_;
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace mallorn::test
