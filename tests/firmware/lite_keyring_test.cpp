// mallorn_lite keyrings on the host: the binary keyrings made by the C++ core are stored and
// enforced by the C99 code on simulated flash: rotation, revocation, rollback, expiry, root
// rotation, power cuts while a new keyring is stored, and hostile keyrings (checked against the
// C++ decoder).
#include <random>

#include "lite_rig.hpp"
#include "mallorn/core/keyring.hpp"
#include "mallorn_lite_keyring.h"

namespace mallorn::test {
namespace {

constexpr std::uint64_t now = 50000;

core::ed25519_keypair key() { return *core::ed25519_generate(); }

std::vector<std::uint8_t> ring(std::uint64_t version, std::vector<const core::ed25519_keypair*> roots,
                               std::vector<const core::ed25519_keypair*> signers, std::vector<core::keyring_key> keys,
                               std::vector<core::key_id> revoked = {}, std::uint64_t expires = 100000) {
  core::keyring k;
  k.version = version;
  k.issued = 1000;
  k.expires = expires;
  for (auto* r : roots) k.root_keys.push_back(r->public_key);
  k.keys = std::move(keys);
  k.revoked = std::move(revoked);
  for (auto* s : signers) EXPECT_TRUE(core::sign_keyring(k, s->private_key).ok());
  return *core::encode_keyring_binary(k);
}

core::keyring_key release(const core::ed25519_keypair& kp, std::vector<std::string> models = {"*"}) {
  core::keyring_key k;
  k.public_key = kp.public_key;
  k.models = std::move(models);
  return k;
}

struct keyring_store {
  sim_power power;
  sim_flash flash{power, 2 * 4096, 4096, 8, 0xFF};
  const mallorn_lite_area* area() const { return flash.area(); }
  int put(const std::vector<std::uint8_t>& blob, const core::ed25519_keypair& root, std::uint64_t at = now) {
    return mallorn_lite_keyring_store(area(), blob.data(), static_cast<std::uint32_t>(blob.size()), root.public_key.data(), at);
  }
  std::uint64_t version() {
    std::uint64_t v = 99;
    EXPECT_EQ(mallorn_lite_keyring_version(area(), &v), 0);
    return v;
  }
};

class LiteKeyring : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = tfm_pair("tfm-micro-speech_realign");
  std::vector<std::uint8_t> old_ = load(dir_ / "old.tflite"), new_ = load(dir_ / "new.tflite");
  core::ed25519_keypair root_ = key(), root2_ = key(), k1_ = key(), k2_ = key();

  std::vector<std::uint8_t> patch_by(const core::ed25519_keypair& kp) {
    return make_mcu_patch(old_, new_, {.signing_key = kp.private_key});
  }
  int apply_under(keyring_store& store, const std::vector<std::uint8_t>& patch, const char* model = "sensor-fw",
                  std::uint64_t at = now) {
    ab_slots s(old_, new_.size());
    auto before = s.b.bytes();
    mallorn_lite_ctx ctx;
    EXPECT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
    EXPECT_EQ(mallorn_lite_require_keyring(&ctx, store.area(), model, at), 0);
    int r = feed_all(ctx, patch, 0, fixed(97));
    if (r) EXPECT_TRUE(s.b.bytes() == before) << "refused before anything was written";
    else EXPECT_TRUE(std::equal(new_.begin(), new_.end(), s.b.bytes().begin()));
    return r;
  }
};

TEST_F(LiteKeyring, RotationRevocationRollbackExpiryAndRootRotation) {
  keyring_store store;
  const auto p1 = patch_by(k1_), p2 = patch_by(k2_);
  EXPECT_EQ(apply_under(store, p1), -MALLORN_LITE_E_KEYRING) << "no keyring stored yet";
  const auto v1 = ring(1, {&root_}, {&root_}, {release(k1_, {"sensor-fw"})});
  ASSERT_EQ(store.put(v1, root_), 0);
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(apply_under(store, p1), 0);
  EXPECT_EQ(apply_under(store, p1, "other-model"), -MALLORN_LITE_E_SIGNATURE);
  EXPECT_EQ(apply_under(store, p2), -MALLORN_LITE_E_SIGNATURE);

  const auto v2 = ring(2, {&root_}, {&root_}, {release(k2_)}, {core::key_id_of(k1_.public_key)});
  ASSERT_EQ(store.put(v2, root_), 0);
  EXPECT_EQ(store.version(), 2u);
  EXPECT_EQ(apply_under(store, p1), -MALLORN_LITE_E_SIGNATURE) << "K1 is revoked";
  EXPECT_EQ(apply_under(store, p2), 0);
  // A revoked key still listed among the keys is refused too.
  keyring_store listed;
  ASSERT_EQ(listed.put(ring(1, {&root_}, {&root_}, {release(k1_), release(k2_)}, {core::key_id_of(k1_.public_key)}), root_), 0);
  EXPECT_EQ(apply_under(listed, p1), -MALLORN_LITE_E_SIGNATURE);
  EXPECT_EQ(apply_under(listed, p2), 0);

  EXPECT_EQ(store.put(v1, root_), -MALLORN_LITE_E_ROLLBACK);
  EXPECT_EQ(store.put(v2, root_), 0) << "the same keyring again is fine";
  EXPECT_EQ(store.put(ring(2, {&root_}, {&root_}, {release(k1_)}), root_), -MALLORN_LITE_E_SIGNATURE) << "same version, other content";
  EXPECT_EQ(store.put(ring(3, {&root_}, {&k1_}, {release(k1_)}), root_), -MALLORN_LITE_E_SIGNATURE) << "not the root";
  EXPECT_EQ(store.version(), 2u);

  EXPECT_EQ(apply_under(store, p2, "sensor-fw", 100000), -MALLORN_LITE_E_EXPIRED);
  EXPECT_EQ(store.put(ring(3, {&root_}, {&root_}, {release(k2_)}, {}, 60000), root_, 70000), -MALLORN_LITE_E_EXPIRED);

  // Root rotation: v3 names root2 and needs both signatures; then root alone is not enough.
  EXPECT_EQ(store.put(ring(3, {&root2_}, {&root2_}, {release(k2_)}), root_), -MALLORN_LITE_E_SIGNATURE);
  EXPECT_EQ(store.put(ring(3, {&root2_}, {&root_}, {release(k2_)}), root_), -MALLORN_LITE_E_SIGNATURE);
  ASSERT_EQ(store.put(ring(3, {&root2_}, {&root_, &root2_}, {release(k2_)}), root_), 0);
  EXPECT_EQ(store.put(ring(4, {&root_}, {&root_}, {release(k1_)}), root_), -MALLORN_LITE_E_SIGNATURE);
  ASSERT_EQ(store.put(ring(4, {&root2_}, {&root2_}, {release(k2_)}), root_), 0);
  EXPECT_EQ(store.version(), 4u);
  EXPECT_EQ(apply_under(store, p2), 0);
}

TEST_F(LiteKeyring, PowerCutAtEveryFlashOperationWhileStoringLeavesOldOrNew) {
  const auto v1 = ring(1, {&root_}, {&root_}, {release(k1_)});
  const auto v2 = ring(2, {&root_}, {&root_}, {release(k2_)}, {core::key_id_of(k1_.public_key)});
  const auto v3 = ring(3, {&root_}, {&root_}, {release(k2_)});
  int completed = 0;
  for (long cut = 0;; ++cut) {
    keyring_store store;
    ASSERT_EQ(store.put(v1, root_), 0);
    ASSERT_EQ(store.put(v2, root_), 0);
    store.power.ops = 0;
    store.power.cut_at = cut;
    const int r = store.put(v3, root_);
    const bool cut_happened = store.power.off;
    store.power.restore_power();
    const auto v = store.version();
    EXPECT_TRUE(v == 2 || v == 3) << cut;
    if (r == 0) EXPECT_EQ(v, 3u) << cut;
    EXPECT_FALSE(store.flash.violated()) << cut;
    // Whatever survived still works, and the interrupted store can be redone.
    EXPECT_EQ(store.put(v1, root_), -MALLORN_LITE_E_ROLLBACK) << cut;
    ASSERT_EQ(store.put(v3, root_), 0) << cut;
    EXPECT_EQ(store.version(), 3u);
    if (!cut_happened) {
      ASSERT_EQ(r, 0);
      completed = 1;
      break;
    }
  }
  EXPECT_EQ(completed, 1);
}

TEST_F(LiteKeyring, HostileKeyringsAreRefusedLikeTheCppDecoderRefusesThem) {
  const auto good = ring(1, {&root_}, {&root_}, {release(k1_, {"sensor-fw", "b"}), release(k2_)}, {core::key_id_of(root2_.public_key)});
  std::mt19937 rng(7);
  keyring_store store;
  auto c_check = [&](const std::vector<std::uint8_t>& b) {
    return mallorn_lite_keyring_check(store.area(), b.data(), static_cast<std::uint32_t>(b.size()), root_.public_key.data(), now);
  };
  ASSERT_EQ(c_check(good), 0);
  EXPECT_LT(c_check({}), 0);
  for (std::size_t n = 1; n < good.size(); ++n) EXPECT_EQ(c_check({good.begin(), good.begin() + static_cast<long>(n)}), -MALLORN_LITE_E_KEYRING) << n;
  int structural = 0;
  for (int i = 0; i < 600; ++i) {
    auto b = good;
    for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    if (b == good) continue;  // a "mutation" that wrote the same byte back
    const bool cpp_ok = core::decode_keyring_binary(b).ok();
    const int r = c_check(b);
    EXPECT_NE(r, 0) << "a changed keyring must never pass: " << i;
    EXPECT_EQ(r == -MALLORN_LITE_E_KEYRING, !cpp_ok) << "C and C++ disagree on the structure of mutation " << i << " (C says " << r << ")";
    structural += !cpp_ok;
  }
  EXPECT_GT(structural, 50);
  std::vector<std::uint8_t> big(MALLORN_LITE_KEYRING_MAX + 1, 0);
  EXPECT_LT(c_check(big), 0);
  EXPECT_EQ(store.version(), 0u) << "checks write nothing";
}

}  // namespace
}  // namespace mallorn::test
