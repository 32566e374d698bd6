// Release only (tests/release_only_tests.txt): what an idle TLS connection costs mallornd. Under
// AddressSanitizer every heap block carries redzones and quarantine, so the figure means something
// only in an optimized build without it; its own small binary, so that the Release stage need
// not build every server test.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "server/tls_rig.hpp"
#include "support/daemon_process.hpp"
#include "support/tls_conn.hpp"

using namespace mallorn;
using namespace mallorn::test;
using namespace std::chrono_literals;

// An idle TLS connection holds OpenSSL's connection state and no record buffers: about 2 KiB of
// RSS each here, where asio's engine (its buffers and a memory BIO pair) kept about 14 KiB.
TEST(TlsTransport, IdleTlsConnectionsHoldLittleMemory) {
  tls_rig rig;
  daemon_process d(rig.dir.path(), rig.tls());
  ASSERT_TRUE(d.listening()) << d.log();
  {
    tls_conn warm(d.port());  // the first connection's allocations are not per-connection costs
    ASSERT_TRUE(warm.send(get("/healthz")));
    ASSERT_EQ(warm.response(), 200);
  }
  std::this_thread::sleep_for(200ms);
  const auto before = rss_kib(d.pid());
  constexpr int n = 400;
  std::vector<std::unique_ptr<tls_conn>> held;
  for (int i = 0; i < n; ++i) {
    held.push_back(std::make_unique<tls_conn>(d.port()));
    ASSERT_TRUE(held.back()->ok()) << i;
    ASSERT_TRUE(held.back()->send(get("/healthz")));
    ASSERT_EQ(held.back()->response(), 200) << i;
  }
  std::this_thread::sleep_for(200ms);
  const auto after = rss_kib(d.pid());
  EXPECT_LT((after - std::min(after, before)) / n, 8u) << "KiB per idle TLS connection (" << before << " -> " << after
                                                         << " KiB for " << n << ")";
}
