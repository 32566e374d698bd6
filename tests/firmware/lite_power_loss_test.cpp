// Power cut at every flash operation of an apply (erases, image writes, journal records, the
// final PENDING record), then a reboot that resumes from the journal: the new slot always ends
// up holding exactly the target, the old slot is never touched, and a resumed apply really
// continues (it re-reads only the patch bytes after the last checkpoint).
#include "lite_rig.hpp"

namespace mallorn::test {
namespace {

struct outcome {
  long ops = 0;
  std::size_t resumed_from = 0;
};

// Applies with power lost at operation `cut` (-1: never), reboots once if it was lost, resumes.
outcome apply_with_cut(ab_slots& s, const std::vector<std::uint8_t>& patch, long cut, unsigned seed) {
  outcome o;
  s.power.ops = 0;
  s.power.cut_at = cut;
  int r = apply_mcu(s, patch, random_split(seed, 300));
  o.ops = s.power.ops;
  if (cut < 0 || !s.power.off) {
    EXPECT_EQ(r, 0) << "cut " << cut;
    return o;
  }
  EXPECT_EQ(r, -MALLORN_LITE_E_FLASH) << "cut " << cut;
  s.power.restore_power();  // reboot
  mallorn_lite_ctx ctx;
  EXPECT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0) << "cut " << cut;
  o.resumed_from = mallorn_lite_resume_offset(&ctx);
  EXPECT_EQ(feed_all(ctx, patch, o.resumed_from, random_split(seed + 1, 300)), 0) << "cut " << cut;
  return o;
}

void cut_everywhere(const std::vector<std::uint8_t>& old_img, const std::vector<std::uint8_t>& new_img) {
  // Small blocks and erase blocks: many checkpoints and journal block switches to cut into.
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 512});
  long total = 0;
  {
    ab_slots s(old_img, new_img.size(), 512, 8);
    total = apply_with_cut(s, patch, -1, 1).ops;
  }
  ASSERT_GT(total, 100);
  std::size_t resumed_mid_patch = 0;
  for (long cut = 0; cut < total; ++cut) {
    ab_slots s(old_img, new_img.size(), 512, 8);
    auto old_before = s.a.bytes();
    auto o = apply_with_cut(s, patch, cut, static_cast<unsigned>(cut));
    ASSERT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin())) << "cut " << cut;
    ASSERT_EQ(slot_state(s.b), MALLORN_LITE_SLOT_PENDING) << "cut " << cut;
    ASSERT_TRUE(s.a.bytes() == old_before) << "cut " << cut;
    ASSERT_FALSE(s.a.violated() || s.b.violated()) << "cut " << cut;
    if (o.resumed_from > patch.size() / 2) ++resumed_mid_patch;
  }
  // Most cuts happen after some checkpoint: those resumes skip the bytes already applied.
  EXPECT_GT(resumed_mid_patch, static_cast<std::size_t>(total / 4));
}

TEST(lite_power_loss, cut_at_every_flash_operation_then_resume) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  cut_everywhere(load(dir / "old.tflite"), load(dir / "new.tflite"));
}

TEST(lite_power_loss, cut_everywhere_with_matches_reaching_back_across_checkpoints) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite");
  std::vector<std::uint8_t> new_img;
  std::mt19937 rng(11);
  std::vector<std::uint8_t> noise(1500);
  for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
  for (int i = 0; i < 5; ++i) {  // fresh data that repeats every ~1.5 KB, plus pieces of the old image
    new_img.insert(new_img.end(), noise.begin(), noise.end() - i);
    new_img.insert(new_img.end(), old_img.begin() + 100 * i, old_img.begin() + 100 * i + 700);
  }
  cut_everywhere(old_img, new_img);
}

TEST(lite_power_loss, an_interrupted_apply_can_be_abandoned) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 512});
  ab_slots s(old_img, new_img.size(), 512, 8);
  s.power.cut_at = 60;
  ASSERT_EQ(apply_mcu(s, patch), -MALLORN_LITE_E_FLASH);
  s.power.restore_power();
  EXPECT_EQ(slot_state(s.b), MALLORN_LITE_SLOT_UPDATING);
  mallorn_lite_ctx ctx;
  ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
  EXPECT_GT(mallorn_lite_resume_offset(&ctx), 0u);
  mallorn_lite_abort(&ctx);
  EXPECT_EQ(slot_state(s.b), MALLORN_LITE_SLOT_EMPTY);
  ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
  EXPECT_EQ(mallorn_lite_resume_offset(&ctx), 0u);  // starts afresh
  EXPECT_EQ(feed_all(ctx, patch, 0, whole()), 0);
}

}  // namespace
}  // namespace mallorn::test
