// mallornd's TLS transport (tls_socket_stream: OpenSSL straight on the socket, issue 18) against
// the real daemon on loopback: requests cut into tiny TLS records, pipelined requests, limits and
// timeouts over TLS and clients that leave mid-response (what an idle TLS connection costs:
// release/idle_memory_test.cpp, Release only).
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/raw_conn.hpp"
#include "server/tls_rig.hpp"
#include "support/tls_conn.hpp"

using namespace mallorn;
using namespace mallorn::test;
using namespace std::chrono_literals;

// The server reads records as they come: a request in one-byte records is the same request, and
// requests pipelined in one record (read ahead from the socket) are each answered, in order.
TEST(TlsTransport, TinyRecordsAndPipelinedRequestsAreServed) {
  tls_rig rig;
  daemon_process d(rig.dir.path(), rig.tls({"--header-limit", "4096"}));
  ASSERT_TRUE(d.listening()) << d.log();
  tls_conn c(d.port());
  ASSERT_TRUE(c.ok()) << d.log();

  ASSERT_TRUE(c.send(get("/healthz"), 1));
  EXPECT_EQ(c.response(), 200);
  const std::string body = nlohmann::json{{"sha256", core::to_hex(*core::sha256_of_file(rig.pairs[0].v1))}}.dump();
  ASSERT_TRUE(c.send("POST /check-update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body,
                     1));
  std::string answer;
  const int status = c.response(&answer);
  EXPECT_TRUE(status == 200 || status == 202) << status << " " << answer;
  EXPECT_NE(answer.find("\"model\""), std::string::npos) << answer;

  ASSERT_TRUE(c.send(get("/healthz") + get("/nothing-here") + get("/healthz")));
  EXPECT_EQ(c.response(), 200);
  EXPECT_EQ(c.response(), 404);
  EXPECT_EQ(c.response(), 200);
  // Records that end inside a request and start the next one.
  ASSERT_TRUE(c.send(get("/healthz") + get("/healthz") + get("/healthz"), 7));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.response(), 200) << i;

  // Limits hold over TLS: an oversized header is answered 431 and the connection ends.
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8192, 'a') + "\r\n\r\n", 512));
  EXPECT_EQ(c.response(), 431);
  EXPECT_TRUE(c.closed_within(5000ms));
  EXPECT_TRUE(d.running()) << d.log();
}

// The header timeout bounds a TLS client as it bounds a plain one: one that never starts the
// handshake, one that handshakes and says nothing, and one that trickles its header in one-byte
// records. A kept-alive connection gets the longer idle timeout.
TEST(TlsTransport, SilentAndSlowTlsClientsAreClosedAfterTheHeaderTimeout) {
  tls_rig rig;
  daemon_process d(rig.dir.path(), rig.tls({"--header-timeout", "1"}));
  ASSERT_TRUE(d.listening()) << d.log();
  const auto start = std::chrono::steady_clock::now();
  raw_conn no_handshake(d.port());
  tls_conn silent(d.port());
  ASSERT_TRUE(silent.ok());
  EXPECT_TRUE(no_handshake.closed_within(5000ms));
  EXPECT_TRUE(silent.closed_within(5000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);

  tls_conn slow(d.port());
  ASSERT_TRUE(slow.ok());
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  const auto slow_start = std::chrono::steady_clock::now();
  const bool sent_all = slow.send(header, 1, 100ms);  // 6 s at this pace; the server cuts it after 1
  EXPECT_TRUE(!sent_all || slow.closed_within(3000ms));
  EXPECT_EQ(slow.response(nullptr, 500ms), 0);  // never answered
  EXPECT_LT(std::chrono::steady_clock::now() - slow_start, 5s);

  tls_conn kept(d.port());
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(kept.send(get("/healthz")));
  EXPECT_EQ(kept.response(), 200);
  EXPECT_FALSE(kept.closed_within(2500ms));
  ASSERT_TRUE(kept.send(get("/healthz")));
  EXPECT_EQ(kept.response(), 200);
}

// Clients that reset or close the connection while a download is in flight: the server goes on
// serving, and every such connection is closed (the active count goes back down). A connection
// the server ends is released at once: its close_notify goes out and the socket closes, without
// waiting for the client's (asio's shutdown waited up to 5 s for it, holding the slot).
TEST(TlsTransport, ClosedAndAbandonedConnectionsAreReleased) {
  tls_rig rig;
  daemon_process d(rig.dir.path(), rig.tls());
  ASSERT_TRUE(d.listening()) << d.log();
  {
    tls_conn c(d.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(c.response(), 200);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.tcp_closed_within(4000ms));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  }
  const std::string model = "/model/" + rig.pairs[0].model + "/2";
  for (int i = 0; i < 20; ++i) {
    auto c = std::make_unique<tls_conn>(d.port());
    ASSERT_TRUE(c->ok());
    ASSERT_TRUE(c->send(get(model) + get("/healthz")));
    if (i % 2 == 0) {  // reset at once
      linger abort{1, 0};
      ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    }
    c.reset();  // closed without close_notify, the response mostly unread
  }
  tls_conn probe(d.port());
  ASSERT_TRUE(probe.ok());
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(probe.send(get("/metrics")));
    ASSERT_EQ(probe.response(&metrics), 200);
    if (metrics.find("\nmallornd_connections_active 1\n") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(metrics.find("\nmallornd_connections_active 1\n"), std::string::npos) << metrics;
  EXPECT_TRUE(d.running()) << d.log();
}

