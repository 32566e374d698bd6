// A TLS client connection to mallornd on loopback that controls how its bytes are cut into TLS
// records (one SSL_write is one record), for tests of the server's TLS transport: requests in
// tiny records, pipelined requests, slow or silent clients. It does not verify the server's
// certificate (the tests check the transport, daemon_test checks the certificate).
#pragma once
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace mallorn::test {

class tls_conn {
 public:
  // Connects and completes the TLS handshake (ok() says whether it did).
  explicit tls_conn(int port) {
    ::signal(SIGPIPE, SIG_IGN);  // SSL_write to a connection the server closed fails, not kills
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return;
    timeval tick{0, 100000};  // blocking reads give up every 100 ms, so every wait below is bounded
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int r = 0;
    while ((r = SSL_connect(ssl_)) != 1 && SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ &&
           std::chrono::steady_clock::now() < end) {
    }
    ok_ = r == 1;
  }
  ~tls_conn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  tls_conn(const tls_conn&) = delete;
  tls_conn& operator=(const tls_conn&) = delete;

  bool ok() const { return ok_; }
  int fd() const { return fd_; }

  // Sends `bytes` in TLS records of at most `record` bytes, `pause` after each.
  bool send(const std::string& bytes, std::size_t record = 16384,
            std::chrono::milliseconds pause = std::chrono::milliseconds(0)) {
    for (std::size_t at = 0; at < bytes.size(); at += record) {
      const int n = static_cast<int>(std::min(record, bytes.size() - at));
      if (SSL_write(ssl_, bytes.data() + at, n) != n) return false;
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
    return true;
  }

  // Reads one response with a Content-Length body: its status (0 if the connection failed or
  // `limit` passed), and its body into `body`. Bytes after it stay for the next call.
  int response(std::string* body = nullptr, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto head_end = in_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string lower = in_.substr(0, head_end);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto p = lower.find("content-length:");
        const std::size_t length = p == std::string::npos ? 0 : std::stoull(lower.substr(p + 15));
        if (in_.size() >= head_end + 4 + length) {
          const int status = in_.compare(0, 9, "HTTP/1.1 ") == 0 ? std::atoi(in_.c_str() + 9) : 0;
          if (body) *body = in_.substr(head_end + 4, length);
          in_.erase(0, head_end + 4 + length);
          return status;
        }
      }
      if (std::chrono::steady_clock::now() >= end || !read_some()) return 0;
    }
  }

  // True if the server ended the connection (close, reset, close_notify) within `limit`.
  bool closed_within(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end)
      if (!read_some()) return std::chrono::steady_clock::now() < end;
    return false;
  }

  // True if the server's FIN arrives within `limit` (TLS bytes still in flight are discarded).
  bool tcp_closed_within(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
    return false;
  }

 private:
  // One SSL_read into in_: false when the connection ended; true on data or a 100 ms tick.
  bool read_some() {
    char buf[16384];
    const int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    return SSL_get_error(ssl_, n) == SSL_ERROR_WANT_READ;  // the 100 ms receive timeout
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string in_;
};

}  // namespace mallorn::test
