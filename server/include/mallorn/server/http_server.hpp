// The HTTP(S) front end: Beast + Asio, one io_context per I/O thread, one coroutine per connection
// on one of them, a bounded number of connections, timeouts on every read and write, and a drain on
// SIGTERM that lets downloads in flight finish. Routing is delegated to `router`.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/server/metrics.hpp"
#include "mallorn/server/patch_cache.hpp"
#include "mallorn/server/router.hpp"

namespace mallorn::server {

struct http_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 1;
  unsigned blocking_threads = 4;  // for router::plan().blocking requests
  // router::plan().device_write requests (reports) waiting for or running on the writer thread;
  // past it they are answered 503 + Retry-After and counted (mallornd_device_writes_shed_total).
  std::size_t max_queued_writes = 4096;
  // Index lookups of device requests an I/O thread could not answer from memory (credentials not
  // in the credential cache, check-update answers not cached) waiting for or running on the
  // blocking pool; past it they are answered 503 + Retry-After (mallornd_index_lookups_shed_total).
  std::size_t max_queued_lookups = 1024;
  // At the cap, the oldest idle keep-alive connection is closed to make room; only when none is
  // idle does a new client get 503. main() derives the default from RLIMIT_NOFILE
  // (default_max_connections()).
  std::size_t max_connections = 20000;
  // Per client address (IPv4, or the /64 of an IPv6 address): at the cap, that address's own
  // oldest idle connection is closed; with none idle, 503. One address cannot hold every slot.
  std::size_t max_connections_per_address = 64;
  std::uint32_t header_limit = 16 << 10;
  // header_timeout: a new connection's first byte, and every request header once it started.
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds read_timeout{15}, idle_timeout{75}, write_timeout{60}, drain_timeout{30};
  std::filesystem::path tls_cert, tls_key;  // both set: HTTPS
  std::filesystem::path tls_client_ca;      // set: mutual TLS, clients need a certificate it signed
  bool client_cert_optional = false;         // --device-auth: a client certificate is checked if sent
  std::filesystem::path staging_dir;        // uploads are written here first
};

// The connection cap that keeps descriptors for everything else: a quarter of RLIMIT_NOFILE
// (at least 256) is left for model and patch files being sent, SQLite, builds, logging and the
// MQTT bridge, so the cap is reached (and old idle connections are shed) before accept() or
// open() fail with EMFILE. A download holds a second descriptor while it runs; past the
// headroom, open() fails and the client gets 503 + Retry-After, never a wrong answer.
std::size_t default_max_connections(std::uint64_t fd_limit);

// The key connections are counted under per address: the IPv4 address (IPv4-mapped IPv6
// included), or the /64 prefix of an IPv6 address (one host usually owns a whole /64).
std::string address_key(const std::string& address);

class http_server {
 public:
  http_server(http_options opts, router& r, metrics& m, patch_cache& cache);
  ~http_server();

  // Binds and listens; port() is known afterwards.
  core::result<void> listen();
  std::uint16_t port() const;
  // Serves until drained (SIGTERM/SIGINT or drain()); returns once every connection closed or the
  // drain timeout passed. `on_reload` runs (on its own thread) for SIGHUP.
  void run(std::function<void()> on_ready, std::function<void()> on_reload, std::function<void()> on_drain = {});
  // Stops accepting, closes idle keep-alive connections, lets busy ones finish.
  void drain();
  bool draining() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mallorn::server
