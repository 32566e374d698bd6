#include "mallorn/server/http_server.hpp"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/ssl/context.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <algorithm>
#include <map>
#include <unordered_map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "http_session.hpp"
#include "tls_policy.hpp"
#include "tls_socket_stream.hpp"

namespace mallorn::server {

using tcp = asio::ip::tcp;
// A connection's executor is its io_context's own: each context is run by exactly one thread, so
// the connection's handlers are serialized without a strand (a strand cost a lock and a second
// trip through the scheduler per completion: issue 18). Concrete, not type-erased: with Boost
// 1.74 a beast::tcp_stream over an any_io_executor-wrapped strand freed the strand while a
// cancelled timeout handler still referred to it (AddressSanitizer: heap-use-after-free).
using executor_t = asio::io_context::executor_type;
using socket_t = asio::basic_stream_socket<tcp, executor_t>;
using stream_t = beast::basic_stream<tcp, executor_t>;
using tls_stream_t = tls_socket_stream<socket_t>;  // OpenSSL straight on the socket (issue 18)

// Open connections, by id and by client address: what a drain closes, what the caps count, and
// where the oldest idle keep-alive connection is found when a cap is reached. Each entry's close
// runs on its connection's thread and re-checks that the connection is still idle.
class connection_registry {
 public:
  // Added by the acceptor the moment a connection is admitted (so it counts, and can be shed,
  // before its coroutine starts on its I/O thread); the session attaches `close` when it starts.
  struct entry {
    executor_t executor;
    std::shared_ptr<connection_state> state;
    std::function<void()> close;  // empty until attach()
    std::string key;
    bool closing = false;
    bool shed_before_start = false;  // closed before attach(): the session ends at once
  };

  enum class verdict { admitted, admitted_after_shedding, refused };

  // Counts a new connection from `key` against `per_key_cap`. At the cap, that key's oldest idle
  // connection is shed; with none idle, the connection is refused (and not counted).
  verdict admit_address(const std::string& key, std::size_t per_key_cap) {
    std::lock_guard lock(mutex_);
    auto& ids = by_key_[key];
    std::size_t& count = pending_[key];
    if (ids.size() + count < per_key_cap) {
      ++count;
      return verdict::admitted;
    }
    if (shed_oldest_idle_locked(ids)) {
      ++count;
      return verdict::admitted_after_shedding;
    }
    if (ids.empty() && count == 0) by_key_.erase(key), pending_.erase(key);
    return verdict::refused;
  }
  // Undoes admit_address() for a connection that is not served after all.
  void forget_address(const std::string& key) {
    std::lock_guard lock(mutex_);
    release_pending_locked(key);
  }
  // The global cap: sheds the oldest idle connection anywhere. False if none is idle.
  bool shed_oldest_idle() {
    std::lock_guard lock(mutex_);
    std::vector<std::uint64_t> all;
    all.reserve(entries_.size());
    for (const auto& [id, e] : entries_) all.push_back(id);
    return shed_oldest_idle_locked(all);
  }

  // The session starts: false if the connection was shed meanwhile (the session ends at once).
  bool attach(std::uint64_t id, std::function<void()> close) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.shed_before_start) return false;
    it->second.close = std::move(close);
    return true;
  }

  // An admitted connection (admit_address) becomes an entry.
  std::uint64_t add(entry e) {
    std::lock_guard lock(mutex_);
    const auto id = ++next_;
    release_pending_locked(e.key);
    by_key_[e.key].push_back(id);
    entries_.emplace(id, std::move(e));
    return id;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    auto k = by_key_.find(it->second.key);
    if (k != by_key_.end()) {
      std::erase(k->second, id);
      if (k->second.empty() && !pending_.count(it->second.key)) by_key_.erase(k);
    }
    entries_.erase(it);
  }
  void close_idle() {
    std::lock_guard lock(mutex_);
    for (auto& [id, e] : entries_) post_close_locked(id, e);
  }

 private:
  void release_pending_locked(const std::string& key) {
    auto p = pending_.find(key);
    if (p == pending_.end()) return;
    if (--p->second == 0) {
      pending_.erase(p);
      auto k = by_key_.find(key);
      if (k != by_key_.end() && k->second.empty()) by_key_.erase(k);
    }
  }
  // O(candidates): the per-address list is short (its cap); the global pass runs only at the cap.
  bool shed_oldest_idle_locked(const std::vector<std::uint64_t>& candidates) {
    std::uint64_t victim = 0;
    std::int64_t oldest = 0;
    for (auto id : candidates) {
      auto it = entries_.find(id);
      if (it == entries_.end() || it->second.closing || !it->second.state->idle) continue;
      const auto since = it->second.state->idle_since_ns.load();
      if (victim == 0 || since < oldest) victim = id, oldest = since;
    }
    if (victim == 0) return false;
    auto& e = entries_.at(victim);
    e.closing = true;
    post_close_locked(victim, e);
    return true;
  }
  void post_close_locked(std::uint64_t id, entry& e) {
    asio::post(e.executor, [this, id] {
      std::lock_guard inner(mutex_);
      auto it = entries_.find(id);
      if (it == entries_.end()) return;
      if (!it->second.state->idle) it->second.closing = false;  // busy again: not shed after all
      else if (it->second.close) it->second.close();
      else it->second.shed_before_start = true;
    });
  }

  std::mutex mutex_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> by_key_;
  std::unordered_map<std::string, std::size_t> pending_;  // admitted, session not started yet
  std::uint64_t next_ = 0;
};

struct http_server::impl {
  http_options opts;
  router& routes;
  metrics& stats;
  patch_cache& cache;
  // One io_context per I/O thread (issue 18): a connection lives on one context for its whole
  // life, so its handlers never hop threads and the contexts share no scheduler lock (one shared
  // context made every completion a cross-thread wake-up under load). `ioc` is context 0; it
  // also runs the acceptor, the signals and the drain. New connections go round-robin.
  asio::io_context ioc{1};
  std::vector<std::unique_ptr<asio::io_context>> more_contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::size_t next_context = 0;
  asio::thread_pool blocking_pool;
  tcp::acceptor acceptor{ioc};
  std::optional<asio::ssl::context> tls;
  std::atomic<bool> draining{false};
  connection_registry registry;
  std::function<void()> on_drain;
  asio::thread_pool write_pool{1};
  std::atomic<std::size_t> writes_queued{0}, lookups_queued{0};
  session_context ctx{opts, routes, stats, cache, blocking_pool, draining, write_pool, writes_queued, lookups_queued};

  impl(http_options o, router& r, metrics& m, patch_cache& c)
      : opts(std::move(o)), routes(r), stats(m), cache(c), blocking_pool(opts.blocking_threads) {
    for (unsigned n = 1; n < std::max(1u, opts.threads); ++n) {
      more_contexts.push_back(std::make_unique<asio::io_context>(1));
      keep_running.push_back(asio::make_work_guard(*more_contexts.back()));
    }
  }

  // Round-robin: the context the next accepted connection lives on (admit() moves it on).
  asio::io_context& context_for_next_connection() {
    const std::size_t n = next_context % (more_contexts.size() + 1);
    return n == 0 ? ioc : *more_contexts[n - 1];
  }
  void stop_all() {
    for (auto& g : keep_running) g.reset();
    for (auto& c : more_contexts) c->stop();
    ioc.stop();
  }

  // The connection was registered by the acceptor (a TLS handshake in progress counts as idle:
  // a client that connects and says nothing is the first to be shed); the session makes it
  // closable. False: it was shed before its coroutine started.
  template <class Stream>
  bool attach_connection(Stream& stream, std::uint64_t id) {
    auto& tcp_stream = beast::get_lowest_layer(stream);
    return registry.attach(id, [&tcp_stream] {
      beast::error_code ec;
      tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      tcp_stream.socket().close(ec);
    });
  }

  asio::awaitable<void> plain_connection(socket_t socket, std::string client, std::uint64_t id,
                                         std::shared_ptr<connection_state> state) {
    stream_t stream(std::move(socket));
    if (!attach_connection(stream, id)) {
      registry.remove(id);
      co_return;
    }
    co_await serve_connection(stream, ctx, client, *state);
    registry.remove(id);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> tls_connection(socket_t socket, std::string client, std::uint64_t id,
                                       std::shared_ptr<connection_state> state) {
    struct unregister {
      connection_registry& r;
      std::uint64_t id;
      ~unregister() { r.remove(id); }
    } done{registry, id};
    std::optional<tls_stream_t> made;
    try {
      made.emplace(std::move(socket), tls->native_handle());
    } catch (const std::exception& e) {
      spdlog::warn("{}: cannot start a TLS connection: {}", client, e.what());
      co_return;
    }
    auto& stream = *made;
    if (!attach_connection(stream, id)) co_return;
    stream.expires_after(opts.header_timeout);
    if (auto ec = co_await stream.handshake()) {
      stats.tls_handshake(metrics::tls_handshake_result::failed);
      spdlog::debug("{}: TLS handshake failed: {}", client, ec.message());
      co_return;
    }
    stats.tls_handshake(SSL_session_reused(stream.native_handle()) ? metrics::tls_handshake_result::resumed
                                                                   : metrics::tls_handshake_result::full);
    // mTLS: the device ids of a certificate the CA verified (the handshake failed otherwise).
    if (X509* peer = SSL_get1_peer_certificate(stream.native_handle())) {
      if (SSL_get_verify_result(stream.native_handle()) == X509_V_OK)
        state->peer_device_ids = identity::certificate_device_ids(peer);
      X509_free(peer);
    }
    co_await serve_connection(stream, ctx, client, *state);
    stream.expires_after(std::chrono::seconds(5));
    co_await stream.shutdown();
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
    // accept() failing (EMFILE, ENFILE, ENOBUFS): back off exponentially (10 ms .. 1 s) while it
    // lasts, and log once per 10 s with a count instead of once per attempt.
    std::chrono::milliseconds backoff{0};
    std::uint64_t failures_unlogged = 0;
    auto last_log = std::chrono::steady_clock::time_point{};
    for (;;) {
      beast::error_code ec;
      socket_t socket(context_for_next_connection().get_executor());
      co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open() || draining) co_return;
        stats.accept_failed();
        ++failures_unlogged;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_log >= std::chrono::seconds(10)) {
          spdlog::warn("accept failed {} time(s) in the last 10 s: {} (backing off up to 1 s)", failures_unlogged,
                       ec.message());
          failures_unlogged = 0;
          last_log = now;
        }
        backoff = std::min<std::chrono::milliseconds>(std::chrono::seconds(1),
                                                      std::max<std::chrono::milliseconds>(std::chrono::milliseconds(10), backoff * 2));
        asio::steady_timer pause(ioc, backoff);
        co_await pause.async_wait(asio::use_awaitable);
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      admit(std::move(socket));
      // Drain the backlog now: each async_accept completion queues behind every handler already
      // ready on context 0, so accepting one connection per turn left a burst of 1000 clients
      // (a fleet waking on the hour) waiting seconds for their first answer (issue 18: p99).
      // The acceptor is non-blocking; a bounded batch keeps context 0's own connections served.
      for (int n = 0; n < accept_batch && !draining; ++n) {
        socket_t more(context_for_next_connection().get_executor());
        acceptor.accept(more, ec);
        if (ec) break;  // would_block: the backlog is empty (errors show at the next async_accept)
        admit(std::move(more));
      }
    }
  }

  static constexpr int accept_batch = 256;

  // An accepted connection: counted against the per-address and global caps (503 over them),
  // registered, and its session started on its own I/O thread.
  void admit(socket_t socket) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // already reset by the peer
    ++next_context;
    std::string client = remote.address().to_string();
    std::string key = address_key(client);
    const auto per_address = registry.admit_address(key, opts.max_connections_per_address);
    if (per_address == connection_registry::verdict::refused) {
      stats.connection_rejected();
      asio::co_spawn(executor, refuse(std::move(socket)), asio::detached);
      return;
    }
    if (per_address == connection_registry::verdict::admitted_after_shedding) stats.connection_shed();
    // The global cap: the oldest idle connection makes room. A shed connection closes a moment
    // later on its own thread, so a little slack above the cap absorbs that; past the slack,
    // or with nobody idle, 503.
    const auto active = stats.connections_active.load();
    const auto cap = static_cast<std::int64_t>(opts.max_connections);
    const auto slack = static_cast<std::int64_t>(std::max<std::size_t>(8, opts.max_connections / 64));
    if (active >= cap && per_address != connection_registry::verdict::admitted_after_shedding) {
      if (active < cap + slack && registry.shed_oldest_idle()) {
        stats.connection_shed();
      } else {
        registry.forget_address(key);
        stats.connection_rejected();
        asio::co_spawn(executor, refuse(std::move(socket)), asio::detached);
        return;
      }
    }
    ++stats.connections_active;
    auto state = std::make_shared<connection_state>();
    state->set_idle(true);
    state->key = key;
    const auto id = registry.add({executor, state, {}, key});
    auto done = [this](std::exception_ptr) { --stats.connections_active; };
    if (tls) asio::co_spawn(executor, tls_connection(std::move(socket), std::move(client), id, std::move(state)), done);
    else asio::co_spawn(executor, plain_connection(std::move(socket), std::move(client), id, std::move(state)), done);
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
    stop_all();
  }
};

std::size_t default_max_connections(std::uint64_t fd_limit) {
  const std::uint64_t headroom = std::max<std::uint64_t>(256, fd_limit / 4);
  if (fd_limit <= headroom + 16) return 16;
  return static_cast<std::size_t>(std::min<std::uint64_t>(fd_limit - headroom, 1000000));
}

std::string address_key(const std::string& address) {
  beast::error_code ec;
  auto a = asio::ip::make_address(address, ec);
  if (ec) return address;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return a.to_v6().to_v4().to_string();
  if (a.is_v4()) return a.to_string();
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

http_server::http_server(http_options opts, router& r, metrics& m, patch_cache& cache)
    : impl_(std::make_unique<impl>(std::move(opts), r, m, cache)) {}

http_server::~http_server() {
  impl_->blocking_pool.join();
  impl_->write_pool.join();
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
  // The backlog: SOMAXCONN (4096 on current kernels; net.core.somaxconn caps it), as nginx is
  // configured in scripts/bench-server.sh. Non-blocking, so accept_loop() can drain it in batches.
  if (!ec) i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) i.acceptor.non_blocking(true, ec);
  if (ec)
    return core::make_error(core::errc::io_error, "cannot listen on " + i.opts.host + ":" + std::to_string(i.opts.port) +
                                                      ": " + ec.message());
  if (!i.opts.tls_cert.empty()) {
    i.tls.emplace(asio::ssl::context::tls_server);
    i.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (auto refused = apply_tls_policy(i.tls->native_handle()); !refused.empty())
      return core::make_error(core::errc::invalid_argument, "TLS: " + refused);
    i.tls->use_certificate_chain_file(i.opts.tls_cert.string(), ec);
    if (!ec) i.tls->use_private_key_file(i.opts.tls_key.string(), asio::ssl::context::pem, ec);
    if (ec) return core::make_error(core::errc::invalid_argument, "TLS: cannot load certificate or key: " + ec.message());
    if (!i.opts.tls_client_ca.empty()) {
      // Device identity: the handshake fails for a client without a certificate from this CA.
      i.tls->load_verify_file(i.opts.tls_client_ca.string(), ec);
      if (ec) return core::make_error(core::errc::invalid_argument, "TLS: cannot load client CA: " + ec.message());
      // With --device-auth, devices may instead hold a token: a certificate is then asked for,
      // checked when sent, but not required by the handshake.
      i.tls->set_verify_mode(i.opts.client_cert_optional ? asio::ssl::verify_peer
                                                         : asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
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
  for (auto& c : i.more_contexts) threads.emplace_back([&c] { c->run(); });
  i.ioc.run();
  for (auto& t : threads) t.join();
  signals.cancel();
}

void http_server::drain() {
  asio::post(impl_->ioc, [this] { impl_->start_drain(); });
}

bool http_server::draining() const { return impl_->draining.load(); }

}  // namespace mallorn::server
