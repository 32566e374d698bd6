// The device registry (enrollments, admission, tokens, nonces) against both back-ends: a SQLite
// file and a private PostgreSQL server, like storage_suite_test.cpp. Migration 300 applies on
// both; every state change the routes rely on is checked here without HTTP.
#include <gtest/gtest.h>

#include "mallorn/server/identity/device_registry.hpp"
#include "mallorn/server/index_db.hpp"
#include "support/sql_backends.hpp"

using namespace mallorn;
using namespace mallorn::server::identity;

namespace {

template <typename Backend>
class IdentityStorage : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(Backend::available(why)) << why;
    auto raw = server::storage::open_database(backend.url(), backend.dir.path());
    ASSERT_TRUE(raw) << raw.err().what();
    auto db = server::index_db::open(std::move(*raw), device_registry::migrations());
    ASSERT_TRUE(db) << db.err().what();
    index = std::move(*db);
  }
  device_registry registry(enrollment_limits limits = {}, std::vector<preauth_entry> preauth = {}) {
    return device_registry(index->database(), limits, std::move(preauth));
  }
  Backend backend;
  std::unique_ptr<server::index_db> index;
};

TYPED_TEST_SUITE(IdentityStorage, test::sql_backends, test::backend_names);

enroll_request request(const std::string& id, std::uint8_t key_byte) {
  enroll_request r;
  r.device_id = id;
  r.public_key.fill(key_byte);
  r.tags_json = R"({"site":"berlin"})";
  return r;
}

}  // namespace

TEST(IdentityStateMachine, TransitionTable) {
  using s = device_state;
  using a = admission_action;
  EXPECT_EQ(next_state(s::pending, a::admit), s::admitted);
  EXPECT_EQ(next_state(s::pending, a::reject), s::rejected);
  EXPECT_EQ(next_state(s::rejected, a::admit), s::admitted);
  EXPECT_EQ(next_state(s::admitted, a::revoke), s::revoked);
  EXPECT_EQ(next_state(s::admitted, a::admit), s::admitted);  // a repeat changes nothing
  EXPECT_EQ(next_state(s::admitted, a::reject), std::nullopt);
  EXPECT_EQ(next_state(s::revoked, a::admit), std::nullopt);  // final
  EXPECT_EQ(next_state(s::revoked, a::reject), std::nullopt);
}

TYPED_TEST(IdentityStorage, EnrollIsIdempotentAndRefusesAnotherKey) {
  auto reg = this->registry();
  auto first = reg.enroll(request("dev-a", 1), "10.0.0.1", "10.0.0.1", 100);
  ASSERT_TRUE(first) << first.err().what();
  EXPECT_EQ(first->outcome, enroll_outcome::created);
  EXPECT_EQ(first->state, device_state::pending);
  auto again = reg.enroll(request("dev-a", 1), "10.0.0.1", "10.0.0.1", 101);
  EXPECT_EQ(again->outcome, enroll_outcome::unchanged);
  auto other = reg.enroll(request("dev-a", 2), "10.0.0.9", "10.0.0.9", 102);
  EXPECT_EQ(other->outcome, enroll_outcome::key_mismatch);
  auto found = reg.find("dev-a");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->public_key[0], 1);
  EXPECT_EQ((*found)->tags_json, R"({"site":"berlin"})");
  EXPECT_EQ((*found)->created_at, 100);
  // A rejected squatter does not hold the id: another key starts over as pending.
  ASSERT_EQ(reg.change("dev-a", admission_action::reject, 103)->state, device_state::rejected);
  auto real = reg.enroll(request("dev-a", 3), "10.0.0.2", "10.0.0.2", 104);
  EXPECT_EQ(real->outcome, enroll_outcome::created);
  EXPECT_EQ(real->state, device_state::pending);
  EXPECT_EQ((*reg.find("dev-a"))->public_key[0], 3);
}

TYPED_TEST(IdentityStorage, PendingEnrollmentsAreCappedPerAddressAndInTotal) {
  auto reg = this->registry({/*max_pending=*/3, /*max_pending_per_address=*/2});
  EXPECT_EQ(reg.enroll(request("a1", 1), "10.0.0.1", "10.0.0.1", 1)->outcome, enroll_outcome::created);
  EXPECT_EQ(reg.enroll(request("a2", 2), "10.0.0.1", "10.0.0.1", 1)->outcome, enroll_outcome::created);
  EXPECT_EQ(reg.enroll(request("a3", 3), "10.0.0.1", "10.0.0.1", 1)->outcome, enroll_outcome::too_many_from_address);
  EXPECT_EQ(reg.enroll(request("b1", 4), "10.0.0.2", "10.0.0.2", 1)->outcome, enroll_outcome::created);
  EXPECT_EQ(reg.enroll(request("b2", 5), "10.0.0.2", "10.0.0.2", 1)->outcome, enroll_outcome::too_many_pending);
  EXPECT_EQ(reg.list(device_state::pending, 100)->size(), 3u);
  // Admitting one makes room.
  ASSERT_EQ(reg.change("a1", admission_action::admit, 2)->outcome, change_outcome::done);
  EXPECT_EQ(reg.enroll(request("b2", 5), "10.0.0.2", "10.0.0.2", 3)->outcome, enroll_outcome::created);
}

TYPED_TEST(IdentityStorage, PreauthorisedDevicesAreAdmittedOnlyWithTheirKey) {
  core::ed25519_public_key listed{};
  listed.fill(7);
  auto reg = this->registry({1, 1}, {{"any-key", std::nullopt}, {"pinned", listed}});
  auto a = reg.enroll(request("any-key", 9), "10.0.0.1", "10.0.0.1", 1);
  EXPECT_EQ(a->outcome, enroll_outcome::created);
  EXPECT_EQ(a->state, device_state::admitted);
  EXPECT_EQ(reg.enroll(request("pinned", 8), "10.0.0.1", "10.0.0.1", 1)->outcome, enroll_outcome::preauth_key_mismatch);
  EXPECT_FALSE(*reg.find("pinned"));
  EXPECT_EQ(reg.enroll(request("pinned", 7), "10.0.0.1", "10.0.0.1", 1)->state, device_state::admitted);
}

TYPED_TEST(IdentityStorage, TokensNoncesAndRevocation) {
  auto reg = this->registry();
  ASSERT_TRUE(reg.enroll(request("dev-t", 1), "10.0.0.1", "10.0.0.1", 100));
  const std::string h1(64, 'a'), h2(64, 'b');
  EXPECT_EQ(*reg.issue_token("dev-t", "00112233445566778899", 500, h1, 100, 200), token_outcome::not_admitted);
  ASSERT_EQ(reg.change("dev-t", admission_action::admit, 101)->state, device_state::admitted);
  EXPECT_EQ(*reg.issue_token("dev-t", "00112233445566778899", 500, h1, 100, 200), token_outcome::issued);
  EXPECT_EQ(*reg.issue_token("dev-t", "00112233445566778899", 500, h2, 100, 200), token_outcome::replayed);
  EXPECT_EQ(**reg.device_for_token(h1, 150), "dev-t");
  EXPECT_FALSE(*reg.device_for_token(h1, 200));  // expired
  EXPECT_FALSE(*reg.device_for_token(h2, 150));  // never stored
  // find_token: the holder and the expiry the credential cache refuses the token at.
  auto held = reg.find_token(h1, 150);
  ASSERT_TRUE(held && *held);
  EXPECT_EQ((*held)->device_id, "dev-t");
  EXPECT_EQ((*held)->expires_at, 200);
  EXPECT_FALSE(*reg.find_token(h1, 200));
  // At most max_tokens live tokens per device: the oldest go.
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(*reg.issue_token("dev-t", "ff" + std::to_string(1000 + i) + "00000000000000", 500,
                               std::string(63, 'c') + std::to_string(i), 110, 300 + i),
              token_outcome::issued);
  EXPECT_FALSE(*reg.device_for_token(std::string(63, 'c') + "0", 150));
  EXPECT_EQ(**reg.device_for_token(std::string(63, 'c') + "5", 150), "dev-t");
  // Revocation: the tokens stop working at once, and the state is final.
  EXPECT_EQ(reg.change("dev-t", admission_action::revoke, 120)->state, device_state::revoked);
  EXPECT_FALSE(*reg.device_for_token(std::string(63, 'c') + "5", 150));
  EXPECT_EQ(reg.change("dev-t", admission_action::admit, 121)->outcome, change_outcome::not_allowed);
  EXPECT_EQ(reg.change("nobody", admission_action::admit, 121)->outcome, change_outcome::unknown_device);
  auto audit_rows = this->index->database().query("SELECT COUNT(*) FROM device_tokens WHERE device_id = 'dev-t'");
  ASSERT_TRUE(audit_rows);
  EXPECT_EQ(audit_rows->front().integer(0), 0);
}
