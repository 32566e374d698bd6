// A TLS connection whose records go straight between OpenSSL and the socket, as nginx does:
// SSL_read/SSL_write on the descriptor (a socket BIO, read-ahead on) and a readiness wait only
// when OpenSSL says it wants more (socket.async_wait). Asio's ssl::stream passed every record
// through a memory BIO pair and its own buffers (about 70 KiB zero-filled per connection, an
// engine op and an extra copy per read): at 1000 TLS connections mallornd answered 0.67x of
// nginx's check-updates (issue 18). Every wait is bounded by the deadline set with
// expires_after(), as with beast::basic_stream: once it passes, the socket is closed and the
// operation fails with beast::error::timeout.
//
// It is its own lowest layer (no next_layer()): the session sets deadlines and reaches the socket
// through beast::get_lowest_layer() as it does for beast::tcp_stream. All of a connection's
// operations run on its one I/O thread; one read and one write may be outstanding at a time.
#pragma once
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

namespace mallorn::server {

namespace asio = boost::asio;
namespace beast = boost::beast;

template <class Socket>
class tls_socket_stream {
 public:
  using executor_type = typename Socket::executor_type;
  using clock = std::chrono::steady_clock;

  // Takes `socket` (connected) and makes the server side of a TLS connection from `ctx`. Throws
  // beast::system_error if OpenSSL cannot allocate it.
  tls_socket_stream(Socket socket, SSL_CTX* ctx)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), watch_(std::make_shared<watch>()) {
    watch_->socket = &socket_;
    watch_->timer = &timer_;
    beast::error_code ec;
    socket_.non_blocking(true, ec);
    ssl_.reset(SSL_new(ctx));
    if (ec || !ssl_ || SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle())) != 1)
      throw beast::system_error(ec ? ec : beast::error_code(asio::error::no_memory));
    // Partial writes: write_some() reports what went out; records are not copied between calls.
    SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);  // an idle connection holds no record buffers
    SSL_set_read_ahead(ssl_.get(), 1);  // one recv per record, not one for its header and one for its body
    SSL_set_accept_state(ssl_.get());
  }
  ~tls_socket_stream() { watch_->socket = nullptr; }
  tls_socket_stream(const tls_socket_stream&) = delete;
  tls_socket_stream& operator=(const tls_socket_stream&) = delete;

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  Socket& socket() noexcept { return socket_; }
  SSL* native_handle() noexcept { return ssl_.get(); }

  // The deadline of the operations that follow (as beast::basic_stream's).
  void expires_after(clock::duration d) { watch_->deadline = clock::now() + d; }
  void expires_at(clock::time_point t) { watch_->deadline = t; }
  void expires_never() { watch_->deadline = clock::time_point::max(); }

  // AsyncReadStream / AsyncWriteStream: Beast's HTTP reads and asio::async_write use these.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_compose<Token, void(beast::error_code, std::size_t)>(
        io_op<false>{*this, asio::buffer_sequence_begin(buffers) == asio::buffer_sequence_end(buffers)
                                ? asio::mutable_buffer{}
                                : asio::mutable_buffer(*asio::buffer_sequence_begin(buffers))},
        token, socket_);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_compose<Token, void(beast::error_code, std::size_t)>(io_op<true, ConstBuffers>{*this, buffers},
                                                                          token, socket_);
  }

  // The server side of the handshake, within the deadline.
  asio::awaitable<beast::error_code> handshake() {
    for (;;) {
      if (!socket_.is_open()) co_return closed_error();
      ERR_clear_error();
      const int r = SSL_do_handshake(ssl_.get());
      if (r == 1) co_return beast::error_code{};
      const auto step = classify(r);
      if (step.ec) co_return step.ec;
      if (auto ec = co_await wait(step.wait)) co_return ec;
    }
  }

  // Sends close_notify (once, not waiting for the peer's: nginx does the same), within the
  // deadline. Nothing after a fatal error: OpenSSL forbids it.
  asio::awaitable<void> shutdown() {
    while (!fatal_ && socket_.is_open() && SSL_is_init_finished(ssl_.get())) {
      ERR_clear_error();
      const int r = SSL_shutdown(ssl_.get());
      if (r >= 0) co_return;  // 0: ours sent, the peer's not awaited
      const auto step = classify(r);
      if (step.ec || co_await wait(step.wait)) co_return;
    }
  }

 private:
  // Shared with the timer's handler, which may run after the stream is gone (socket == nullptr).
  struct watch {
    Socket* socket = nullptr;
    asio::steady_timer* timer = nullptr;
    clock::time_point deadline = clock::time_point::max();
    clock::time_point pending_at = clock::time_point::max();  // the timer's expiry while it waits
    bool waiting = false;                                      // an operation waits for readiness
    bool timed_out = false;
  };
  struct ssl_free {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  struct step_result {
    beast::error_code ec;  // set: the operation failed
    asio::socket_base::wait_type wait = asio::socket_base::wait_read;
  };

  // What SSL_get_error() says of a call that returned `r` <= 0.
  step_result classify(int r) {
    switch (SSL_get_error(ssl_.get(), r)) {
      case SSL_ERROR_WANT_READ:
        return {{}, asio::socket_base::wait_read};
      case SSL_ERROR_WANT_WRITE:
        return {{}, asio::socket_base::wait_write};
      case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
        return {asio::error::eof};
      case SSL_ERROR_SYSCALL:
        fatal_ = true;
        if (errno != 0) return {beast::error_code(errno, beast::system_category())};
        return {asio::ssl::error::stream_truncated};
      default: {
        fatal_ = true;
        const unsigned long e = ERR_get_error();
        if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return {asio::ssl::error::stream_truncated};
        return {e ? beast::error_code(static_cast<int>(e), asio::error::get_ssl_category())
                  : beast::error_code(asio::error::connection_reset)};
      }
    }
  }
  beast::error_code closed_error() const {
    return watch_->timed_out ? beast::error_code(beast::error::timeout) : beast::error_code(asio::error::bad_descriptor);
  }

  // Before a readiness wait: false when the deadline has passed already. The timer is moved only
  // to an earlier deadline; when it fires before a later one, it re-arms itself for that (so a
  // request's usual deadlines cost no timer operation).
  bool arm() {
    auto& w = *watch_;
    if (w.deadline != clock::time_point::max() && clock::now() >= w.deadline) {
      w.timed_out = true;
      beast::error_code ec;
      socket_.close(ec);
      return false;
    }
    w.waiting = true;
    if (w.deadline < w.pending_at) start_timer(watch_, w.deadline);
    return true;
  }
  static void start_timer(const std::shared_ptr<watch>& w, clock::time_point at) {
    w->pending_at = at;
    w->timer->expires_at(at);
    w->timer->async_wait([w](beast::error_code ec) {
      if (ec || w->socket == nullptr) return;  // cancelled (moved earlier), or the stream is gone
      w->pending_at = clock::time_point::max();
      if (w->deadline == clock::time_point::max()) return;
      if (clock::now() < w->deadline) return start_timer(w, w->deadline);
      if (!w->waiting) return;  // the next wait fails at once (arm())
      w->timed_out = true;
      beast::error_code ignored;
      w->socket->close(ignored);  // the waiting operation completes with operation_aborted
    });
  }

  // A readiness wait for the coroutines above.
  asio::awaitable<beast::error_code> wait(asio::socket_base::wait_type kind) {
    if (!arm()) co_return beast::error::timeout;
    beast::error_code ec;
    co_await socket_.async_wait(kind, asio::redirect_error(asio::use_awaitable, ec));
    watch_->waiting = false;
    if (watch_->timed_out) ec = beast::error::timeout;
    co_return ec;
  }

  // One SSL_read (`write` false) or SSL_write (true) on the socket: what it moved, or what to wait for.
  step_result transfer(bool write, void* data, std::size_t size, std::size_t& moved) {
    ERR_clear_error();
    const int r = write ? SSL_write_ex(ssl_.get(), data, size, &moved) : SSL_read_ex(ssl_.get(), data, size, &moved);
    if (r == 1) return {};
    moved = 0;
    return classify(r);
  }

  // read_some / write_some. A write sends the first 16 KiB of the buffers (copied together when
  // they are several, so a response's header and body share a record), a read fills the first
  // buffer. A result available at once is posted, never completed inside the initiation.
  template <bool Write, class ConstBuffers = asio::const_buffer>
  struct io_op {
    tls_socket_stream& s;
    std::conditional_t<Write, ConstBuffers, asio::mutable_buffer> buffers;
    enum { starting, waiting, posted } state = starting;
    beast::error_code result_ec{};
    std::size_t result_n = 0;

    template <class Self>
    void operator()(Self& self, beast::error_code ec = {}) {
      if (state == posted) return self.complete(result_ec, result_n);
      if (state == waiting) {
        s.watch_->waiting = false;
        if (s.watch_->timed_out) ec = beast::error::timeout;
        if (ec) return finish(self, ec, 0);
      }
      for (;;) {
        if (!s.socket_.is_open()) return finish(self, s.closed_error(), 0);
        std::size_t moved = 0;
        step_result step;
        if constexpr (Write) {
          std::array<char, 16384> joined;
          const std::size_t total = asio::buffer_size(buffers);
          asio::const_buffer first = total == 0 ? asio::const_buffer{} : *asio::buffer_sequence_begin(buffers);
          if (first.size() < total && first.size() < joined.size())  // several pieces: one record
            first = asio::buffer(joined.data(), asio::buffer_copy(asio::buffer(joined), buffers));
          if (first.size() == 0) return finish(self, {}, 0);
          // Partial writes return after each record: go on while the socket takes them. After a
          // want-write the caller starts again at `moved`, the bytes OpenSSL must see again.
          auto* bytes = static_cast<char*>(const_cast<void*>(first.data()));
          for (std::size_t n = 0; moved < first.size() && !step.ec; moved += n) {
            step = s.transfer(true, bytes + moved, first.size() - moved, n);
            if (n == 0) break;
          }
        } else {
          if (buffers.size() == 0) return finish(self, {}, 0);
          step = s.transfer(false, buffers.data(), buffers.size(), moved);
        }
        if (moved > 0) return finish(self, {}, moved);  // an error shows again at the next call
        if (step.ec) return finish(self, step.ec, 0);
        if (!s.arm()) return finish(self, beast::error::timeout, 0);
        state = waiting;
        return s.socket_.async_wait(step.wait, std::move(self));
      }
    }
    template <class Self>
    void finish(Self& self, beast::error_code ec, std::size_t n) {
      if (state == waiting) return self.complete(ec, n);  // already in a completion handler
      state = posted;
      result_ec = ec;
      result_n = n;
      asio::post(s.socket_.get_executor(), std::move(self));
    }
  };

  Socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<watch> watch_;
  std::unique_ptr<SSL, ssl_free> ssl_;
  bool fatal_ = false;  // SSL_ERROR_SYSCALL / SSL_ERROR_SSL seen: no close_notify
};

}  // namespace mallorn::server
