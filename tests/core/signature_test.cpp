#include <gtest/gtest.h>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/signature.hpp"

using namespace mallorn::core;

TEST(Ed25519, Rfc8032TestVector1) {
  std::array<std::uint8_t, 32> seed{};
  ASSERT_TRUE(from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed));
  auto key = ed25519_private_key_from(seed);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(to_hex(std::span(*key).subspan(32)), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = ed25519_sign(*key, {});
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(to_hex(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe"
            "24655141438e7a100b");
}

TEST(Ed25519, SignVerifyAndRejectTampering) {
  auto kp = ed25519_generate();
  auto other = ed25519_generate();
  ASSERT_TRUE(kp.ok() && other.ok());
  std::vector<std::uint8_t> msg{'p', 'a', 't', 'c', 'h'};
  auto sig = ed25519_sign(kp->private_key, msg);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(ed25519_verify(kp->public_key, msg, *sig));
  EXPECT_FALSE(ed25519_verify(other->public_key, msg, *sig));
  auto bad_msg = msg;
  bad_msg[0] ^= 1;
  EXPECT_FALSE(ed25519_verify(kp->public_key, bad_msg, *sig));
  auto bad_sig = *sig;
  bad_sig[10] ^= 1;
  EXPECT_FALSE(ed25519_verify(kp->public_key, msg, bad_sig));
}

TEST(Ed25519, KeyFilesFollowTheSeedLayout) {
  auto kp = ed25519_generate();
  ASSERT_TRUE(kp.ok());
  EXPECT_TRUE(ed25519_private_key_from(kp->private_key).ok());
  EXPECT_EQ(*ed25519_private_key_from(std::span(kp->private_key).first(32)), kp->private_key);
  auto mismatched = kp->private_key;
  mismatched[40] ^= 1;
  EXPECT_EQ(ed25519_private_key_from(mismatched).err().code, errc::signature_error);
  EXPECT_FALSE(ed25519_private_key_from(std::vector<std::uint8_t>(31)).ok());
  EXPECT_FALSE(ed25519_public_key_from(std::vector<std::uint8_t>(33)).ok());
  EXPECT_TRUE(ed25519_public_key_from(kp->public_key).ok());
}
