// A download's body, sent from the file straight to the connection's socket, as nginx does:
// sendfile(2) on plain TCP; SSL_write on a TLS connection, record after record until the socket
// would block (a sendmsg per record, not a trip through a memory BIO and the reactor: TLS
// downloads ran at 0.6-0.7x nginx's through asio's engine, issue 18). Each wait for writability
// is bounded by the write timeout (a slow client is fine, a stalled one is not).
#pragma once
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string_view>

namespace mallorn::server {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Waits until `sock` is writable, at most `timeout` (then the wait is cancelled and this throws).
template <class Socket>
asio::awaitable<void> wait_writable(Socket& sock, std::chrono::seconds timeout) {
  asio::steady_timer watchdog(sock.get_executor());
  // An expiry already queued when the wait completes must not touch the socket later (it may be
  // gone by then): the handler runs on the connection's thread and checks this first.
  auto waiting = std::make_shared<bool>(true);
  watchdog.expires_after(timeout);
  watchdog.async_wait([&sock, waiting](beast::error_code wait_ec) {
    if (!wait_ec && *waiting) sock.cancel();  // stalled client: abort the wait below
  });
  beast::error_code ec;
  co_await sock.async_wait(Socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
  *waiting = false;
  watchdog.cancel();
  if (ec) throw beast::system_error(ec);
}

// Sends a response header on the plain socket `sock`. `more`: the body follows at once (sendfile),
// so MSG_MORE keeps the last partial segment queued and the header leaves with the body's first
// bytes, as under TCP_CORK (nginx's tcp_nopush) but without two setsockopt calls per response;
// the body's last sendfile pushes everything. Each wait for writability is bounded by `timeout`.
template <class Socket>
asio::awaitable<void> send_head(Socket& sock, std::string_view head, bool more, std::chrono::seconds timeout) {
  beast::error_code ec;
  if (!sock.native_non_blocking()) sock.native_non_blocking(true, ec);  // once: the setter is an ioctl
  while (!head.empty()) {
    const ssize_t n = ::send(sock.native_handle(), head.data(), head.size(), MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (n > 0) {
      head.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) throw beast::system_error(beast::error_code(errno, beast::system_category()));
    co_await wait_writable(sock, timeout);
  }
}

// Sends [offset, offset + length) of `fd` with sendfile(2). `sent` counts the bytes sent, also
// when it throws.
template <class Socket>
asio::awaitable<void> sendfile_range(Socket& sock, int fd, std::uint64_t offset, std::uint64_t length,
                                     std::chrono::seconds timeout, std::uint64_t& sent) {
  beast::error_code ec;
  if (!sock.native_non_blocking()) sock.native_non_blocking(true, ec);  // once: the setter is an ioctl
  off_t pos = static_cast<off_t>(offset);
  while (sent < length) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length - sent, 1u << 20));
    const ssize_t n = ::sendfile(sock.native_handle(), fd, &pos, want);
    if (n > 0) {
      sent += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) throw beast::system_error(beast::http::error::short_read);  // the file shrank
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw beast::system_error(beast::error_code(errno, beast::system_category()));
    co_await wait_writable(sock, timeout);
  }
}

// Sends [offset, offset + length) of `fd` over the TLS connection `ssl` whose socket is `sock`
// (tls_socket_stream: the SSL writes to the socket itself, so nothing is queued elsewhere). `sent`
// counts the body bytes SSL_write took, also when it throws.
template <class Socket>
asio::awaitable<void> ssl_write_range(SSL* ssl, Socket& sock, int fd, std::uint64_t offset, std::uint64_t length,
                                      std::chrono::seconds timeout, std::uint64_t& sent) {
  static constexpr std::size_t chunk = 256 << 10;
  auto buffer = std::make_unique_for_overwrite<char[]>(std::min<std::uint64_t>(chunk, length));
  while (sent < length) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length - sent, chunk));
    const ssize_t got = ::pread(fd, buffer.get(), want, static_cast<off_t>(offset + sent));
    if (got <= 0) throw beast::system_error(beast::http::error::short_read);  // the file shrank or failed
    std::size_t done = 0;
    while (done < static_cast<std::size_t>(got)) {
      ERR_clear_error();
      // A retry after SSL_ERROR_WANT_WRITE repeats the same bytes, as OpenSSL requires.
      const int n = SSL_write(ssl, buffer.get() + done, static_cast<int>(static_cast<std::size_t>(got) - done));
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        sent += static_cast<std::uint64_t>(n);
        continue;
      }
      const int error = SSL_get_error(ssl, n);
      if (error == SSL_ERROR_WANT_WRITE) {
        co_await wait_writable(sock, timeout);
        continue;
      }
      if (error == SSL_ERROR_SYSCALL && errno != 0)
        throw beast::system_error(beast::error_code(errno, beast::system_category()));
      const unsigned long ssl_error = ERR_get_error();
      throw beast::system_error(ssl_error ? beast::error_code(static_cast<int>(ssl_error), asio::error::get_ssl_category())
                                          : beast::error_code(asio::error::connection_reset));
    }
  }
}

}  // namespace mallorn::server
