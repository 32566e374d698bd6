// The firmware's compact Ed25519 verifier against signatures made by the C++ core (OpenSSL),
// alone and inside an apply.
#include <random>

#include "lite_rig.hpp"
#include "mallorn/core/signature.hpp"
#include "ml_ed25519.h"

namespace mallorn::test {
namespace {

TEST(lite_ed25519, agrees_with_openssl_on_random_messages) {
  std::mt19937 rng(42);
  for (int k = 0; k < 8; ++k) {
    auto kp = core::ed25519_generate();
    ASSERT_TRUE(kp.ok());
    for (std::size_t len : {0, 1, 63, 64, 111, 112, 127, 128, 129, 244, 1000}) {
      std::vector<std::uint8_t> msg(len);
      for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
      auto sig = core::ed25519_sign(kp->private_key, msg);
      ASSERT_TRUE(sig.ok());
      EXPECT_EQ(ml_ed25519_verify(sig->data(), kp->public_key.data(), msg.data(), msg.size()), 1) << len;
      auto bad_sig = *sig;
      bad_sig[rng() % 64] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      EXPECT_EQ(ml_ed25519_verify(bad_sig.data(), kp->public_key.data(), msg.data(), msg.size()), 0) << len;
      if (len) {
        auto bad_msg = msg;
        bad_msg[rng() % len] ^= 1;
        EXPECT_EQ(ml_ed25519_verify(sig->data(), kp->public_key.data(), bad_msg.data(), bad_msg.size()), 0) << len;
      }
      auto other = core::ed25519_generate();
      EXPECT_EQ(ml_ed25519_verify(sig->data(), other->public_key.data(), msg.data(), msg.size()), 0) << len;
    }
  }
}

TEST(lite_ed25519, signed_patch_applies_and_wrong_or_missing_signatures_are_refused) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto kp = core::ed25519_generate(), other = core::ed25519_generate();
  auto signed_patch = make_mcu_patch(old_img, new_img, {.signing_key = kp->private_key});
  auto unsigned_patch = make_mcu_patch(old_img, new_img);
  auto run = [&](const std::vector<std::uint8_t>& patch, const core::ed25519_public_key& key) {
    ab_slots s(old_img, new_img.size());
    auto before = s.b.bytes();
    mallorn_lite_ctx ctx;
    EXPECT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
    EXPECT_EQ(mallorn_lite_require_signature(&ctx, key.data()), 0);
    int r = feed_all(ctx, patch, 0, fixed(33));
    if (r) EXPECT_TRUE(s.b.bytes() == before);  // refused before anything was written
    return r;
  };
  EXPECT_EQ(run(signed_patch, kp->public_key), 0);
  EXPECT_EQ(run(signed_patch, other->public_key), -MALLORN_LITE_E_SIGNATURE);
  EXPECT_EQ(run(unsigned_patch, kp->public_key), -MALLORN_LITE_E_SIGNATURE);
  // Without a key required, a signed patch applies like any other.
  ab_slots s(old_img, new_img.size());
  EXPECT_EQ(apply_mcu(s, signed_patch), 0);
}

}  // namespace
}  // namespace mallorn::test
