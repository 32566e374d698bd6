// Release only (tests/release_only_tests.txt): what an idle keep-alive connection costs mallornd,
// plain and TLS. Under AddressSanitizer every heap block carries redzones and quarantine, so the
// figure means something only in an optimized build without it; its own small binary, so that the
// Release stage need not build every server test.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <thread>

#include "server/tls_rig.hpp"
#include "support/daemon_process.hpp"
#include "support/raw_conn.hpp"
#include "support/tls_conn.hpp"

using namespace mallorn;
using namespace mallorn::test;
using namespace std::chrono_literals;

namespace {

// Every connection of these tests comes from 127.0.0.1: the per-address cap (64 by default) would
// shed the oldest idle ones and leave fewer held than counted.
const std::vector<std::string> many_from_one_address = {"--max-connections-per-address", "2000"};

struct plain_idle {
  raw_conn conn;
  explicit plain_idle(int port) : conn(port) {}
  bool opened() const { return conn.connected(); }
  bool request_again() { return conn.request(get("/healthz")) == 200; }
};

struct tls_idle {
  tls_conn conn;
  explicit tls_idle(int port) : conn(port) {}
  bool opened() const { return conn.ok(); }
  bool request_again() { return conn.send(get("/healthz")) && conn.response() == 200; }
};

// A connection of kind Conn that got its first answer, or null.
template <class Conn>
std::unique_ptr<Conn> open_answered(int port) {
  auto c = std::make_unique<Conn>(port);
  return c->opened() && c->request_again() ? std::move(c) : nullptr;
}

// KiB of RSS per connection of `n` of kind Conn (each answers one request, then idles), measured
// after a warm-up connection; every one must still answer a second request afterwards, so none
// was shed or closed while measured. Fails the test if the figure is not in (0.5, max_kib).
template <class Conn>
void expect_kib_per_idle_connection(const daemon_process& d, int n, double max_kib) {
  EXPECT_TRUE(open_answered<Conn>(d.port()));  // the first connection's allocations are not per-connection costs
  std::this_thread::sleep_for(200ms);
  const auto before = rss_kib(d.pid());
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < n; ++i) {
    held.push_back(open_answered<Conn>(d.port()));
    ASSERT_TRUE(held.back()) << "connection " << i << " did not get its first answer";
  }
  std::this_thread::sleep_for(200ms);
  const auto after = rss_kib(d.pid());
  int still_open = 0;
  for (auto& c : held) still_open += c->request_again() ? 1 : 0;
  EXPECT_EQ(still_open, n) << "connections shed or closed while held";
  const double kib = static_cast<double>(after - std::min(after, before)) / n;
  std::printf("%.2f KiB per idle connection (%d held)\n", kib, n);
  EXPECT_GT(kib, 0.5) << "the measurement saw nothing: connections not held?";
  EXPECT_LT(kib, max_kib) << "KiB per idle connection";
}

}  // namespace

// An idle keep-alive connection holds its socket, timer, a 512-byte read buffer and the small
// frame of serve_connection(): about 2.4 KiB of RSS here. The request's parsers, request and
// response live in serve_request()'s frame only while a request is served; when they were in
// every connection's frame (3.5 KB more), this test measured 5.8 KiB (and bench-server.sh's 10,000
// idle connections took 85 MiB instead of 54).
TEST(HttpTransport, IdleKeepAliveConnectionsHoldLittleMemory) {
  tls_rig rig;  // its store; this daemon listens without TLS
  daemon_process d(rig.dir.path(), rig.args(many_from_one_address));
  ASSERT_TRUE(d.listening()) << d.log();
  expect_kib_per_idle_connection<plain_idle>(d, 1000, 4.0);
}

// An idle TLS connection holds what a plain one does, OpenSSL's connection state (SSL_new alone
// allocates about 8.5 KiB in OpenSSL 3.0; nginx pays it too) and no record buffers: about 17 KiB
// here. asio's engine (its buffers and a memory BIO pair) kept about 14 KiB more.
TEST(TlsTransport, IdleTlsConnectionsHoldLittleMemory) {
  tls_rig rig;
  daemon_process d(rig.dir.path(), rig.tls(many_from_one_address));
  ASSERT_TRUE(d.listening()) << d.log();
  expect_kib_per_idle_connection<tls_idle>(d, 400, 22.0);
}
