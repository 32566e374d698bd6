// Every single damaged byte of a small mcu patch ends in a clean error code: no crash, no flash
// rule broken, no slot marked good, the old slot untouched.
#include "lite_rig.hpp"

namespace mallorn::test {
namespace {

bool known_error(int r) { return r < 0 && r >= -MALLORN_LITE_E_NO_IMAGE; }

void flip_every_byte(const std::vector<std::uint8_t>& old_img, const std::vector<std::uint8_t>& patch,
                     const std::uint8_t* public_key, std::size_t first, std::size_t last) {
  ab_slots s(old_img, std::max<std::size_t>(old_img.size(), 64 * 1024), 256, 8);
  auto old_before = s.a.bytes();
  for (std::size_t i = first; i < last; ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xFF}) {
      auto bad = patch;
      bad[i] ^= mask;
      mallorn_lite_ctx ctx;
      ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
      if (public_key) ASSERT_EQ(mallorn_lite_require_signature(&ctx, public_key), 0);
      int r = feed_all(ctx, bad, 0, fixed(97));
      ASSERT_TRUE(known_error(r)) << "byte " << i << " mask " << int(mask) << " gave " << r;
      mallorn_lite_abort(&ctx);
      ASSERT_NE(slot_state(s.b), MALLORN_LITE_SLOT_PENDING) << "byte " << i;
      ASSERT_FALSE(s.b.violated());
    }
  }
  EXPECT_TRUE(s.a.bytes() == old_before);
}

TEST(lite_corruption, every_flipped_byte_of_a_patch_is_a_clean_error) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 256});  // several blocks
  ASSERT_GT(patch.size(), 1000u);
  flip_every_byte(old_img, patch, nullptr, 0, patch.size());
}

TEST(lite_corruption, every_flipped_byte_of_a_patch_of_mostly_empty_blocks_is_a_clean_error) {
  // Nearly identical images: most blocks are length-0 "copy the whole block" blocks.
  auto dir = tfm_pair("m2v-test-model_tensor-rename");
  auto old_img = load(dir / "old.safetensors"), new_img = load(dir / "new.safetensors");
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 4096});
  ASSERT_LT(patch.size(), 400u);
  flip_every_byte(old_img, patch, nullptr, 0, patch.size());
}

TEST(lite_corruption, every_flipped_byte_of_a_signed_header_is_refused_when_a_key_is_required) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto kp = core::ed25519_generate();
  ASSERT_TRUE(kp.ok());
  auto patch = make_mcu_patch(old_img, new_img, {.signing_key = kp->private_key});
  auto header = core::parse_header(patch);
  ASSERT_TRUE(header.ok() && header->header);
  flip_every_byte(old_img, patch, kp->public_key.data(), 0, header->header_size);
}

TEST(lite_corruption, random_damage_and_random_chunks_never_commit_a_wrong_image) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 256});
  ab_slots s(old_img, 64 * 1024, 256, 8);
  std::mt19937 rng(2024);
  for (int it = 0; it < 3000; ++it) {
    auto bad = patch;
    for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) bad[rng() % bad.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());
    mallorn_lite_ctx ctx;
    ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
    int r = feed_all(ctx, bad, 0, random_split(static_cast<unsigned>(it), 300));
    if (r == 0) {  // only possible when the damage happened to change nothing that matters
      EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin())) << it;
      const auto* b = s.b.area();  // empty the slot again for the next round
      ASSERT_EQ(b->ops->erase(b, b->size - 2 * b->erase_size, 2 * b->erase_size), 0);
    } else {
      EXPECT_TRUE(known_error(r)) << it << ": " << r;
      EXPECT_NE(slot_state(s.b), MALLORN_LITE_SLOT_PENDING) << it;
    }
    mallorn_lite_abort(&ctx);
    ASSERT_FALSE(s.b.violated());
  }
}

TEST(lite_corruption, truncated_patches_want_more_and_never_finish) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img);
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, std::size_t{180}, patch.size() / 2, patch.size() - 1}) {
    ab_slots s(old_img, new_img.size());
    mallorn_lite_ctx ctx;
    ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
    mallorn_lite_in in{patch.data(), cut, 0};
    EXPECT_GT(mallorn_lite_feed(&ctx, &in), 0) << cut;
    EXPECT_EQ(mallorn_lite_finish(&ctx), -MALLORN_LITE_E_STATE) << cut;
    EXPECT_NE(slot_state(s.b), MALLORN_LITE_SLOT_PENDING);
  }
}

}  // namespace
}  // namespace mallorn::test
