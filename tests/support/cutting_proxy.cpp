#include "support/cutting_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mallorn::test {
namespace {

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

cutting_proxy::cutting_proxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

cutting_proxy::~cutting_proxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mutex_);  // relays take it too when they finish: join outside it
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
}

void cutting_proxy::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (refuse_) {
      // RST rather than FIN: what a client sees from a port nobody listens on.
      linger l{1, 0};
      ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(client);
      continue;
    }
    int upstream = connect_loopback(upstream_port_);
    if (upstream < 0) {
      const std::string why = std::strerror(errno);
      ::close(client);
      std::lock_guard lock(mutex_);
      upstream_errors_ += "connect to upstream port " + std::to_string(upstream_port_) + ": " + why + "\n";
      continue;
    }
    std::lock_guard lock(mutex_);
    relays_.emplace_back([this, client, upstream] { relay(client, upstream); });
  }
}

std::string cutting_proxy::upstream_errors() const {
  std::lock_guard lock(mutex_);
  return upstream_errors_;
}

std::uint64_t cutting_proxy::body_bytes(const std::string& request_prefix) const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& e : exchanges_)
    if (e.request_line.rfind(request_prefix, 0) == 0) total += e.body_bytes;
  return total;
}

void cutting_proxy::relay(int client, int upstream) {
  const std::uint64_t limit = cut_after_;
  std::uint64_t delivered = 0, body = 0;
  std::string request;  // the first request bytes, for the request line
  std::string head;  // response bytes until the end of the header block
  bool in_body = false;
  char buf[16384];
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  while (!stop_) {
    if (::poll(fds, 2, 100) <= 0) continue;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0 || !send_all(upstream, buf, static_cast<std::size_t>(n))) break;
      if (request.size() < 256) request.append(buf, static_cast<std::size_t>(std::min<ssize_t>(n, 256)));
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(upstream, buf, sizeof buf, 0);
      if (n <= 0) break;
      std::size_t take = static_cast<std::size_t>(n);
      bool cut = false;
      if (limit && delivered + take > limit) {
        take = static_cast<std::size_t>(limit - delivered);
        cut = true;
      }
      if (!send_all(client, buf, take)) break;
      delivered += take;
      // Count body bytes: everything after the first "\r\n\r\n" of the response.
      std::size_t body_from = 0;
      if (!in_body) {
        const std::size_t before = head.size();
        head.append(buf, take);
        auto end = head.find("\r\n\r\n");
        if (end != std::string::npos) {
          in_body = true;
          body_from = end + 4 - before;
        } else {
          body_from = take;
        }
      }
      if (in_body && take > body_from) body += take - body_from;
      if (cut) {
        ++cuts_;
        break;
      }
    }
  }
  ::close(client);
  ::close(upstream);
  std::lock_guard lock(mutex_);
  exchanges_.push_back({request.substr(0, request.find("\r\n")), body});
}

}  // namespace mallorn::test
