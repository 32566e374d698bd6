#include "mallorn/server/http_server.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "http_session.hpp"

namespace mallorn::server {

using tcp = asio::ip::tcp;
// Concrete (not type-erased) strand executors for sockets and streams: with Boost 1.74, a
// beast::tcp_stream over an any_io_executor-wrapped strand frees the strand while a cancelled
// timeout handler still refers to it (AddressSanitizer: heap-use-after-free under concurrent
// connections). A typed strand is reference-counted on its own.
using strand_t = asio::strand<asio::io_context::executor_type>;
using socket_t = asio::basic_stream_socket<tcp, strand_t>;
using stream_t = beast::basic_stream<tcp, strand_t>;

// Connections that a drain may need to close: each entry is touched only on its own strand.
class connection_registry {
 public:
  struct entry {
    strand_t executor;
    std::atomic<bool>* idle;
    std::function<void()> close;
  };
  std::uint64_t add(entry e) {
    std::lock_guard lock(mutex_);
    entries_.emplace(++next_, std::move(e));
    return next_;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    entries_.erase(id);
  }
  void close_idle() {
    std::lock_guard lock(mutex_);
    for (auto& [id, e] : entries_)
      asio::post(e.executor, [this, id = id] {
        std::lock_guard inner(mutex_);
        auto it = entries_.find(id);
        if (it != entries_.end() && *it->second.idle) it->second.close();
      });
  }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, entry> entries_;
  std::uint64_t next_ = 0;
};

struct http_server::impl {
  http_options opts;
  router& routes;
  metrics& stats;
  patch_cache& cache;
  asio::io_context ioc;
  asio::thread_pool blocking_pool;
  tcp::acceptor acceptor{ioc};
  std::optional<asio::ssl::context> tls;
  std::atomic<bool> draining{false};
  connection_registry registry;
  std::function<void()> on_drain;
  session_context ctx{opts, routes, stats, cache, blocking_pool, draining};

  impl(http_options o, router& r, metrics& m, patch_cache& c)
      : opts(std::move(o)), routes(r), stats(m), cache(c), blocking_pool(opts.blocking_threads) {}

  template <class Stream>
  asio::awaitable<void> session(Stream& stream, std::string client) {
    std::atomic<bool> idle{false};
    auto& tcp_stream = beast::get_lowest_layer(stream);
    const auto id = registry.add({tcp_stream.get_executor(), &idle, [&tcp_stream] {
                                    beast::error_code ec;
                                    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
                                    tcp_stream.socket().close(ec);
                                  }});
    try {
      co_await serve_connection(stream, ctx, client, idle);
    } catch (const std::exception& e) {
      spdlog::debug("{}: connection ended: {}", client, e.what());
    }
    registry.remove(id);
  }

  asio::awaitable<void> plain_connection(socket_t socket, std::string client) {
    stream_t stream(std::move(socket));
    co_await session(stream, client);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> tls_connection(socket_t socket, std::string client) {
    beast::ssl_stream<stream_t> stream(stream_t(std::move(socket)), *tls);
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(opts.read_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::debug("{}: TLS handshake failed: {}", client, ec.message());
      co_return;
    }
    co_await session(stream, client);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }

  // Over the cap: a short 503 instead of a silent reset, so clients back off and retry.
  static asio::awaitable<void> refuse(socket_t socket) {
    static const std::string body = "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections; retry later\"}}\n";
    static const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nServer: mallornd\r\nRetry-After: 5\r\n"
                                    "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body;
    stream_t stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(5));
    beast::error_code ec;
    co_await asio::async_write(stream, asio::buffer(busy), asio::redirect_error(asio::use_awaitable, ec));
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      beast::error_code ec;
      socket_t socket(asio::make_strand(ioc.get_executor()));
      co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open() || draining) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(ioc, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::use_awaitable);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto executor = socket.get_executor();
      if (stats.connections_active.load() >= static_cast<std::int64_t>(opts.max_connections)) {
        stats.connection_rejected();
        asio::co_spawn(executor, refuse(std::move(socket)), asio::detached);
        continue;
      }
      std::string client = socket.remote_endpoint(ec).address().to_string();
      ++stats.connections_active;
      auto done = [this](std::exception_ptr) { --stats.connections_active; };
      if (tls) asio::co_spawn(executor, tls_connection(std::move(socket), std::move(client)), done);
      else asio::co_spawn(executor, plain_connection(std::move(socket), std::move(client)), done);
    }
  }

  void start_drain() {
    if (draining.exchange(true)) return;
    if (on_drain) on_drain();
    spdlog::info("draining: no new connections; {} open ones finish their current request",
                 stats.connections_active.load());
    beast::error_code ec;
    acceptor.close(ec);
    registry.close_idle();
    asio::co_spawn(ioc, wait_drained(), asio::detached);
  }

  asio::awaitable<void> wait_drained() {
    const auto deadline = std::chrono::steady_clock::now() + opts.drain_timeout;
    asio::steady_timer tick(ioc);
    while (stats.connections_active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      registry.close_idle();  // connections that finished a response since the last pass
      tick.expires_after(std::chrono::milliseconds(50));
      co_await tick.async_wait(asio::use_awaitable);
    }
    if (stats.connections_active.load() > 0)
      spdlog::warn("drain timeout: closing {} connections still open", stats.connections_active.load());
    else
      spdlog::info("drained: all connections closed");
    ioc.stop();
  }
};

http_server::http_server(http_options opts, router& r, metrics& m, patch_cache& cache)
    : impl_(std::make_unique<impl>(std::move(opts), r, m, cache)) {}

http_server::~http_server() {
  impl_->blocking_pool.join();
}

core::result<void> http_server::listen() {
  auto& i = *impl_;
  beast::error_code ec;
  auto address = asio::ip::make_address(i.opts.host, ec);
  if (ec) return core::make_error(core::errc::invalid_argument, "--listen: bad address '" + i.opts.host + "'");
  tcp::endpoint endpoint(address, i.opts.port);
  i.acceptor.open(endpoint.protocol(), ec);
  if (!ec) i.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(endpoint, ec);
  if (!ec) i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return core::make_error(core::errc::io_error, "cannot listen on " + i.opts.host + ":" + std::to_string(i.opts.port) +
                                                      ": " + ec.message());
  if (!i.opts.tls_cert.empty()) {
    i.tls.emplace(asio::ssl::context::tls_server);
    i.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    i.tls->use_certificate_chain_file(i.opts.tls_cert.string(), ec);
    if (!ec) i.tls->use_private_key_file(i.opts.tls_key.string(), asio::ssl::context::pem, ec);
    if (ec) return core::make_error(core::errc::invalid_argument, "TLS: cannot load certificate or key: " + ec.message());
    if (!i.opts.tls_client_ca.empty()) {
      // Device identity: the handshake fails for a client without a certificate from this CA.
      i.tls->load_verify_file(i.opts.tls_client_ca.string(), ec);
      if (ec) return core::make_error(core::errc::invalid_argument, "TLS: cannot load client CA: " + ec.message());
      i.tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
  }
  return {};
}

std::uint16_t http_server::port() const { return impl_->acceptor.local_endpoint().port(); }

void http_server::run(std::function<void()> on_ready, std::function<void()> on_reload, std::function<void()> on_drain) {
  auto& i = *impl_;
  i.on_drain = std::move(on_drain);
  asio::signal_set signals(i.ioc, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const beast::error_code&, int)> on_signal = [&](const beast::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      if (on_reload) std::thread(on_reload).detach();
      signals.async_wait(on_signal);
      return;
    }
    spdlog::info("{} received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    i.start_drain();
  };
  signals.async_wait(on_signal);
  asio::co_spawn(i.ioc, i.accept_loop(), asio::detached);
  if (on_ready) on_ready();
  std::vector<std::thread> threads;
  for (unsigned n = 1; n < std::max(1u, i.opts.threads); ++n) threads.emplace_back([&] { i.ioc.run(); });
  i.ioc.run();
  for (auto& t : threads) t.join();
  signals.cancel();
}

void http_server::drain() {
  asio::post(impl_->ioc, [this] { impl_->start_drain(); });
}

bool http_server::draining() const { return impl_->draining.load(); }

}  // namespace mallorn::server
