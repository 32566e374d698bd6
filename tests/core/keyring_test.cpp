// Keyrings: both encodings round-trip, signatures cover the binary form, and the update and
// patch-trust rules (rollback, root rotation, revocation, expiry) hold. Hostile input at the end.
#include <gtest/gtest.h>

#include <string>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/keyring.hpp"

using namespace mallorn::core;

namespace {

ed25519_keypair make_key() {
  auto kp = ed25519_generate();
  EXPECT_TRUE(kp.ok());
  return *kp;
}

keyring make_ring(std::uint64_t version, const ed25519_keypair& root, std::vector<ed25519_public_key> release) {
  keyring k;
  k.version = version;
  k.issued = 1000;
  k.expires = 100000;
  k.root_keys = {root.public_key};
  for (const auto& r : release) {
    keyring_key key;
    key.public_key = r;
    k.keys.push_back(key);
  }
  return k;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

TEST(Keyring, BinaryAndJsonRoundTripToTheSameSignedBytes) {
  auto root = make_key(), k1 = make_key();
  auto k = make_ring(3, root, {k1.public_key});
  k.keys[0].models = {"detector", "sensor-fw"};
  k.keys[0].not_after = 90000;
  k.revoked = {key_id_of(make_key().public_key)};
  ASSERT_TRUE(sign_keyring(k, root.private_key).ok());
  auto bin = encode_keyring_binary(k);
  ASSERT_TRUE(bin.ok());
  auto from_bin = decode_keyring_binary(*bin);
  ASSERT_TRUE(from_bin.ok()) << from_bin.err().what();
  auto from_json = decode_keyring_json(encode_keyring_json(k));
  ASSERT_TRUE(from_json.ok()) << from_json.err().what();
  EXPECT_EQ(*encode_keyring_binary(*from_json), *bin);
  EXPECT_EQ(*encode_keyring_binary(*from_bin), *bin);
  EXPECT_EQ(from_json->keys[0].models, (std::vector<std::string>{"detector", "sensor-fw"}));
  EXPECT_EQ(count_valid_signatures(*from_json, from_json->root_keys), 1u);
  auto either = decode_keyring(*bin);
  ASSERT_TRUE(either.ok());
  EXPECT_EQ(either->version, 3u);
}

TEST(Keyring, FirstKeyringMustBeSignedByTheProvisionedRoot) {
  auto root = make_key(), stranger = make_key(), k1 = make_key();
  auto anchor = trust_anchor(root.public_key);
  auto good = make_ring(1, root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(good, root.private_key).ok());
  EXPECT_TRUE(verify_keyring_update(anchor, good, 5000).ok());
  auto forged = make_ring(1, stranger, {k1.public_key});
  ASSERT_TRUE(sign_keyring(forged, stranger.private_key).ok());
  auto r = verify_keyring_update(anchor, forged, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::signature_error);
  // Changing any signed byte after signing breaks the signature.
  auto tampered = good;
  tampered.keys[0].models = {"*", "x"};
  EXPECT_FALSE(verify_keyring_update(anchor, tampered, 5000).ok());
}

TEST(Keyring, RollbackAndSameVersionEquivocationAreRefused) {
  auto root = make_key(), k1 = make_key(), k2 = make_key();
  auto v1 = make_ring(1, root, {k1.public_key});
  auto v2 = make_ring(2, root, {k2.public_key});
  ASSERT_TRUE(sign_keyring(v1, root.private_key).ok());
  ASSERT_TRUE(sign_keyring(v2, root.private_key).ok());
  EXPECT_TRUE(verify_keyring_update(v1, v2, 5000).ok());
  auto back = verify_keyring_update(v2, v1, 5000);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.err().code, errc::downgrade_refused);
  EXPECT_TRUE(verify_keyring_update(v2, v2, 5000).ok());  // refetching the same one is fine
  auto other_v2 = make_ring(2, root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(other_v2, root.private_key).ok());
  EXPECT_FALSE(verify_keyring_update(v2, other_v2, 5000).ok());
}

TEST(Keyring, RootRotationNeedsTheOldAndTheNewRoot) {
  auto old_root = make_key(), new_root = make_key(), k1 = make_key();
  auto v1 = make_ring(1, old_root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(v1, old_root.private_key).ok());
  auto v2 = make_ring(2, new_root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(v2, new_root.private_key).ok());
  EXPECT_FALSE(verify_keyring_update(v1, v2, 5000).ok()) << "only the new root signed";
  auto only_old = make_ring(2, new_root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(only_old, old_root.private_key).ok());
  EXPECT_FALSE(verify_keyring_update(v1, only_old, 5000).ok()) << "the new root did not co-sign";
  ASSERT_TRUE(sign_keyring(v2, old_root.private_key).ok());
  EXPECT_TRUE(verify_keyring_update(v1, v2, 5000).ok());
  // After the rotation the old root alone cannot issue v3.
  auto v3 = make_ring(3, old_root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(v3, old_root.private_key).ok());
  EXPECT_FALSE(verify_keyring_update(v2, v3, 5000).ok());
}

TEST(Keyring, ExpiryAndGrace) {
  auto root = make_key(), k1 = make_key();
  auto v1 = make_ring(1, root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(v1, root.private_key).ok());
  EXPECT_FALSE(verify_keyring_update(trust_anchor(root.public_key), v1, 100000).ok()) << "expired on arrival";
  EXPECT_TRUE(check_keyring_fresh(v1, 99999, 0).ok());
  auto stale = check_keyring_fresh(v1, 100000, 0);
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.err().message.find("expired"), std::string::npos);
  EXPECT_TRUE(check_keyring_fresh(v1, 100500, 600).ok());
  EXPECT_FALSE(check_keyring_fresh(v1, 100600, 600).ok());
  EXPECT_TRUE(check_keyring_fresh(v1, 100600, UINT64_MAX).ok());
}

TEST(Keyring, PatchTrustFollowsRevocationModelsAndValidity) {
  auto root = make_key(), k1 = make_key(), k2 = make_key(), k3 = make_key(), stranger = make_key();
  auto k = make_ring(2, root, {k1.public_key, k2.public_key, k3.public_key});
  k.keys[1].models = {"detector"};
  k.keys[2].not_before = 2000;
  k.keys[2].not_after = 3000;
  k.revoked = {key_id_of(k1.public_key)};
  const auto msg = bytes_of("a patch header");
  auto sig = [&](const ed25519_keypair& kp) { return *ed25519_sign(kp.private_key, msg); };
  auto revoked = trusted_release_key(k, "detector", msg, sig(k1), 2500);
  ASSERT_FALSE(revoked.ok());
  EXPECT_NE(revoked.err().message.find("revoked"), std::string::npos);
  auto ok = trusted_release_key(k, "detector", msg, sig(k2), 2500);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, k2.public_key);
  EXPECT_FALSE(trusted_release_key(k, "other", msg, sig(k2), 2500).ok());
  EXPECT_TRUE(trusted_release_key(k, "other", msg, sig(k3), 2500).ok());
  EXPECT_FALSE(trusted_release_key(k, "other", msg, sig(k3), 1999).ok());
  EXPECT_FALSE(trusted_release_key(k, "other", msg, sig(k3), 3000).ok());
  EXPECT_FALSE(trusted_release_key(k, "detector", msg, sig(stranger), 2500).ok());
}

TEST(Keyring, HostileBinaryIsRefusedCleanly) {
  auto root = make_key(), k1 = make_key();
  auto k = make_ring(1, root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(k, root.private_key).ok());
  auto bin = *encode_keyring_binary(k);
  for (std::size_t n = 0; n < bin.size(); ++n)  // every truncation
    EXPECT_FALSE(decode_keyring_binary(std::span(bin).first(n)).ok()) << n;
  auto extra = bin;
  extra.push_back(0);
  EXPECT_FALSE(decode_keyring_binary(extra).ok());
  for (std::size_t at : {4u, 5u, 6u, 7u, 8u, 9u, 12u}) {
    auto b = bin;
    b[at] = 0xff;
    EXPECT_FALSE(decode_keyring_binary(b).ok()) << at;
  }
  auto zero_threshold = bin;
  zero_threshold[5] = 0;
  EXPECT_FALSE(decode_keyring_binary(zero_threshold).ok());
  std::vector<std::uint8_t> huge(max_keyring_size + 1, 0);
  std::copy(bin.begin(), bin.begin() + 4, huge.begin());
  EXPECT_FALSE(decode_keyring_binary(huge).ok());
}

TEST(Keyring, HostileJsonIsRefusedCleanly) {
  auto root = make_key(), k1 = make_key();
  auto k = make_ring(1, root, {k1.public_key});
  ASSERT_TRUE(sign_keyring(k, root.private_key).ok());
  const std::string good = encode_keyring_json(k);
  ASSERT_TRUE(decode_keyring_json(good).ok());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  for (const std::string& s :
       {std::string("[]"), std::string("{"), std::string("null"), std::string(100000, '['),
        replaced("\"_type\"", "\"_typo\""), replaced("\"version\": 1", "\"version\": -1"),
        replaced("\"version\": 1", "\"version\": 1.5"), replaced("\"version\": 1", "\"version\": \"1\""),
        replaced("\"role\": \"release\"", "\"role\": \"root\""), replaced("\"models\": [", "\"models\": [7,"),
        replaced("\"signed\": {", "\"signed\": {\"extra\": 1,"), replaced("\"root_threshold\": 1", "\"root_threshold\": 2"),
        replaced("\"keyid\": \"", "\"keyid\": \"00"), replaced("\"format\": 1", "\"format\": 2")}) {
    auto r = decode_keyring_json(s);
    EXPECT_FALSE(r.ok()) << s.substr(0, 200);
  }
  std::string long_model = replaced("\"*\"", "\"" + std::string(65, 'm') + "\"");
  EXPECT_FALSE(decode_keyring_json(long_model).ok());
}
