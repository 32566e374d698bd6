// The credential cache on its own (credential_cache.hpp): how long an answer of the index is
// trusted, the token's own expiry, local revocation at once (also against a lookup racing with
// it), and the bound under a flood of distinct tokens.
#include <gtest/gtest.h>

#include "mallorn/server/identity/credential_cache.hpp"

using namespace mallorn::server::identity;
using namespace std::chrono_literals;

namespace {

const credential_cache::clock::time_point t0{};

credential_cache cache_of(std::chrono::seconds ttl, std::size_t max = 100) { return credential_cache({ttl, max}); }

}  // namespace

TEST(CredentialCache, TrustsAnAnswerForTheTtlAndNeverPastTheTokensExpiry) {
  auto c = cache_of(10s);
  EXPECT_FALSE(c.device_for_token("aa", 100, t0));
  c.remember_token("aa", {"dev-1", 150}, t0, c.epoch());
  EXPECT_EQ(c.device_for_token("aa", 100, t0 + 9s), "dev-1");
  EXPECT_FALSE(c.device_for_token("aa", 100, t0 + 10s));  // ask the index again
  c.remember_token("bb", {"dev-2", 150}, t0, c.epoch());
  EXPECT_FALSE(c.device_for_token("bb", 150, t0 + 1s));  // the token expired: the cache does not extend it
  EXPECT_FALSE(c.device_for_token("cc", 100, t0));
}

TEST(CredentialCache, DeviceStatesIncludingNotEnrolled) {
  auto c = cache_of(10s);
  EXPECT_FALSE(c.state_of("dev-1", t0));
  c.remember_state("dev-1", device_state::revoked, t0, c.epoch());
  c.remember_state("dev-2", std::nullopt, t0, c.epoch());
  ASSERT_TRUE(c.state_of("dev-1", t0 + 1s));
  EXPECT_EQ(*c.state_of("dev-1", t0 + 1s), device_state::revoked);
  auto unknown = c.state_of("dev-2", t0 + 1s);
  ASSERT_TRUE(unknown);  // known to be not enrolled
  EXPECT_FALSE(*unknown);
  // A device id equal to a token hash is another entry.
  EXPECT_FALSE(c.device_for_token("dev-1", 0, t0));
}

TEST(CredentialCache, ALocalAdmissionChangeForgetsTheDeviceAtOnce) {
  auto c = cache_of(60s);
  c.remember_token("aa", {"dev-1", 1000}, t0, c.epoch());
  c.remember_token("bb", {"dev-1", 1000}, t0, c.epoch());
  c.remember_token("cc", {"dev-2", 1000}, t0, c.epoch());
  c.remember_state("dev-1", device_state::admitted, t0, c.epoch());
  c.forget_device("dev-1");
  EXPECT_FALSE(c.device_for_token("aa", 100, t0));
  EXPECT_FALSE(c.device_for_token("bb", 100, t0));
  EXPECT_FALSE(c.state_of("dev-1", t0));
  EXPECT_EQ(c.device_for_token("cc", 100, t0), "dev-2");
}

TEST(CredentialCache, ALookupThatRacedWithARevocationIsNotRemembered) {
  auto c = cache_of(60s);
  const auto before = c.epoch();  // the pool thread reads the index (still admitted) ...
  c.forget_device("dev-1");       // ... while the operator revokes the device here
  c.remember_token("aa", {"dev-1", 1000}, t0, before);
  c.remember_state("dev-1", device_state::admitted, t0, before);
  EXPECT_FALSE(c.device_for_token("aa", 100, t0));
  EXPECT_FALSE(c.state_of("dev-1", t0));
  EXPECT_EQ(c.size(), 0u);
}

TEST(CredentialCache, AFloodOfTokensStaysWithinTheBoundAndKeepsWhatIsAskedFor) {
  auto c = cache_of(60s, 1000);
  c.remember_token("busy", {"dev-busy", 1000}, t0, c.epoch());
  for (int i = 0; i < 100000; ++i) {
    c.remember_token("t" + std::to_string(i), {"dev-" + std::to_string(i), 1000}, t0, c.epoch());
    if (i % 100 == 0) ASSERT_EQ(c.device_for_token("busy", 100, t0), "dev-busy") << i;  // a device in use
    ASSERT_LE(c.size(), 1000u);
  }
  EXPECT_FALSE(c.device_for_token("t0", 100, t0));  // long gone
  EXPECT_EQ(c.device_for_token("t99999", 100, t0), "dev-99999");
}

TEST(CredentialCache, ZeroTtlRemembersNothing) {
  auto c = cache_of(0s);
  c.remember_token("aa", {"dev-1", 1000}, t0, c.epoch());
  EXPECT_FALSE(c.device_for_token("aa", 100, t0));
  EXPECT_EQ(c.size(), 0u);
}
