// A/B slots: an applied image is tried once, kept when confirmed and reverted when not; a slot
// in the middle of an update is never booted.
#include "lite_rig.hpp"

namespace mallorn::test {
namespace {

struct boot_fixture : ::testing::Test {
  void SetUp() override {
    auto dir = tfm_pair("tfm-hello-world-int8");
    old_img = load(dir / "old.tflite");
    new_img = load(dir / "new.tflite");
    patch = make_mcu_patch(old_img, new_img, {.target_version = 2});
    slots = std::make_unique<ab_slots>(old_img, new_img.size());
    ASSERT_EQ(mallorn_lite_slot_install(slots->a.area(), static_cast<std::uint32_t>(old_img.size()), 1), 0);
  }
  int boot() { return mallorn_lite_boot_select(slots->a.area(), slots->b.area()); }
  std::vector<std::uint8_t> old_img, new_img, patch;
  std::unique_ptr<ab_slots> slots;
};

TEST_F(boot_fixture, factory_image_boots) {
  EXPECT_EQ(boot(), 0);
  EXPECT_EQ(boot(), 0);
  mallorn_lite_slot_info info{};
  ASSERT_EQ(mallorn_lite_slot_read(slots->a.area(), &info), 0);
  EXPECT_EQ(info.state, MALLORN_LITE_SLOT_CONFIRMED);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.image_size, old_img.size());
}

TEST_F(boot_fixture, confirmed_update_stays) {
  ASSERT_EQ(apply_mcu(*slots, patch), 0);
  EXPECT_EQ(boot(), 1);  // trial boot of the new image
  EXPECT_EQ(slot_state(slots->b), MALLORN_LITE_SLOT_TRIED);
  ASSERT_EQ(mallorn_lite_confirm(slots->b.area()), 0);
  EXPECT_EQ(boot(), 1);
  EXPECT_EQ(boot(), 1);
  EXPECT_EQ(slot_state(slots->b), MALLORN_LITE_SLOT_CONFIRMED);
  mallorn_lite_slot_info info{};
  ASSERT_EQ(mallorn_lite_slot_read(slots->b.area(), &info), 0);
  EXPECT_EQ(info.version, 2u);
}

TEST_F(boot_fixture, unconfirmed_update_is_reverted) {
  ASSERT_EQ(apply_mcu(*slots, patch), 0);
  EXPECT_EQ(boot(), 1);  // trial boot; the application never confirms (it crashed)
  EXPECT_EQ(boot(), 0);  // back to the old image
  EXPECT_EQ(slot_state(slots->b), MALLORN_LITE_SLOT_REVERTED);
  EXPECT_EQ(boot(), 0);
  EXPECT_EQ(mallorn_lite_confirm(slots->b.area()), -MALLORN_LITE_E_STATE);  // too late
  EXPECT_TRUE(std::equal(old_img.begin(), old_img.end(), slots->a.bytes().begin()));
}

TEST_F(boot_fixture, half_applied_or_failed_slots_are_not_booted) {
  slots->power.ops = 0;
  slots->power.cut_at = 20;  // after the first checkpoint
  ASSERT_EQ(apply_mcu(*slots, patch), -MALLORN_LITE_E_FLASH);
  slots->power.restore_power();
  EXPECT_EQ(slot_state(slots->b), MALLORN_LITE_SLOT_UPDATING);
  EXPECT_EQ(boot(), 0);
  auto bad = patch;
  bad[bad.size() - 20] ^= 0x40;
  mallorn_lite_ctx ctx;
  ASSERT_EQ(mallorn_lite_init(&ctx, slots->a.area(), slots->b.area()), 0);
  mallorn_lite_abort(&ctx);
  EXPECT_LT(apply_mcu(*slots, bad), 0);
  EXPECT_EQ(boot(), 0);
  EXPECT_NE(slot_state(slots->b), MALLORN_LITE_SLOT_PENDING);
}

TEST_F(boot_fixture, no_image_at_all) {
  sim_power power;
  sim_flash a(power, 4 * 4096, 4096, 8), b(power, 4 * 4096, 4096, 8);
  EXPECT_EQ(mallorn_lite_boot_select(a.area(), b.area()), -MALLORN_LITE_E_NO_IMAGE);
}

TEST_F(boot_fixture, the_next_update_goes_into_the_other_slot) {
  ASSERT_EQ(apply_mcu(*slots, patch), 0);
  ASSERT_EQ(boot(), 1);
  ASSERT_EQ(mallorn_lite_confirm(slots->b.area()), 0);
  // v2 -> v3 back into slot a (the patch here reverses the first one).
  auto back = make_mcu_patch(new_img, old_img, {.target_version = 3});
  mallorn_lite_ctx ctx;
  ASSERT_EQ(mallorn_lite_init(&ctx, slots->b.area(), slots->a.area()), 0);
  ASSERT_EQ(feed_all(ctx, back, 0, fixed(50)), 0);
  EXPECT_EQ(boot(), 0);
  ASSERT_EQ(mallorn_lite_confirm(slots->a.area()), 0);
  EXPECT_EQ(boot(), 0);
  EXPECT_TRUE(std::equal(old_img.begin(), old_img.end(), slots->a.bytes().begin()));
}

}  // namespace
}  // namespace mallorn::test
