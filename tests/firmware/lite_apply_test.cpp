// mallorn_lite applies real mcu patches (made by the C++ encoder from the tflite-micro pairs) to
// exactly the target, however the patch is split into chunks, and never touches the old slot.
#include "lite_rig.hpp"

namespace mallorn::test {
namespace {

const char* const tfm_pairs[] = {"tfm-hello-world-int8", "tfm-micro-speech_realign", "tfm-mnist-lstm",
                                 "tfm-retinaface_a-to-b", "tfm-custom-model-rf-keras"};

class lite_apply : public ::testing::TestWithParam<const char*> {};

TEST_P(lite_apply, real_pair_gives_the_exact_target_and_leaves_the_old_slot_alone) {
  auto dir = tfm_pair(GetParam());
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img);
  ASSERT_FALSE(patch.empty());
  ab_slots s(old_img, std::max(old_img.size(), new_img.size()));
  auto old_slot_before = s.a.bytes();
  ASSERT_EQ(apply_mcu(s, patch, random_split(7)), 0);
  EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin()));
  EXPECT_TRUE(s.a.bytes() == old_slot_before);
  EXPECT_FALSE(s.a.violated() || s.b.violated());
  EXPECT_EQ(slot_state(s.b), MALLORN_LITE_SLOT_PENDING);
}

INSTANTIATE_TEST_SUITE_P(tflite_micro, lite_apply, ::testing::ValuesIn(tfm_pairs),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                           return n;
                         });

TEST(lite_chunks, output_does_not_depend_on_how_the_patch_is_split) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.block_size = 1024});
  std::vector<chunker> splits = {whole(), fixed(1), fixed(3), fixed(64), fixed(65), random_split(1, 10),
                                 random_split(2, 100), random_split(3, 5000)};
  for (std::size_t i = 0; i < splits.size(); ++i) {
    ab_slots s(old_img, new_img.size());
    ASSERT_EQ(apply_mcu(s, patch, splits[i]), 0) << "split " << i;
    EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin())) << "split " << i;
  }
}

TEST(lite_chunks, one_byte_at_a_time_on_a_weight_heavy_pair) {
  auto dir = tfm_pair("tfm-mnist-lstm");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.level = 3});
  ab_slots s(old_img, new_img.size(), 1024, 4);
  ASSERT_EQ(apply_mcu(s, patch, fixed(1)), 0);
  EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin()));
}

TEST(lite_chunks, bytes_past_the_end_of_the_patch_are_left_unconsumed) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img);
  auto padded = patch;
  padded.insert(padded.end(), 100, 0xAB);
  ab_slots s(old_img, new_img.size());
  mallorn_lite_ctx ctx;
  ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
  mallorn_lite_in in{padded.data(), padded.size(), 0};
  EXPECT_EQ(mallorn_lite_feed(&ctx, &in), 0);
  EXPECT_EQ(in.pos, patch.size());
  EXPECT_EQ(mallorn_lite_finish(&ctx), 0);
}

TEST(lite_context, fits_the_one_kib_budget) {
  EXPECT_LE(sizeof(mallorn_lite_ctx), 1024u);
  EXPECT_LE(mallorn_lite_context_used(), sizeof(mallorn_lite_ctx));
}

TEST(lite_errors, failures_are_sticky_and_named) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img);
  ab_slots s(old_img, new_img.size());
  mallorn_lite_ctx ctx;
  ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
  EXPECT_EQ(mallorn_lite_finish(&ctx), -MALLORN_LITE_E_STATE);  // before the patch ended
  mallorn_lite_in in{patch.data(), patch.size(), 0};
  EXPECT_EQ(mallorn_lite_feed(&ctx, &in), -MALLORN_LITE_E_STATE);
  EXPECT_STREQ(mallorn_lite_strerror(-MALLORN_LITE_E_SOURCE), "wrong source");
}

TEST(lite_errors, wrong_source_downgrade_and_too_small_slot_are_refused_before_any_write) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.target_version = 5});
  {
    auto other = old_img;
    other[100] ^= 1;
    ab_slots s(other, new_img.size());
    auto before = s.b.bytes();
    EXPECT_EQ(apply_mcu(s, patch), -MALLORN_LITE_E_SOURCE);
    EXPECT_TRUE(s.b.bytes() == before);
  }
  {
    ab_slots s(old_img, new_img.size());
    auto before = s.b.bytes();
    mallorn_lite_ctx ctx;
    ASSERT_EQ(mallorn_lite_init(&ctx, s.a.area(), s.b.area()), 0);
    ASSERT_EQ(mallorn_lite_set_min_version(&ctx, 6), 0);
    EXPECT_EQ(feed_all(ctx, patch, 0, whole()), -MALLORN_LITE_E_DOWNGRADE);
    EXPECT_TRUE(s.b.bytes() == before);
  }
  {
    sim_power power;
    sim_flash a(power, slot_size_for(old_img.size(), 256), 256, 8), b(power, 3 * 256, 256, 8);  // room for 256 bytes
    a.program(old_img);
    mallorn_lite_ctx ctx;
    ASSERT_EQ(mallorn_lite_init(&ctx, a.area(), b.area()), 0);
    EXPECT_EQ(feed_all(ctx, patch, 0, whole()), -MALLORN_LITE_E_SPACE);
  }
}

TEST(lite_errors, the_standard_profile_is_not_for_the_mcu) {
  auto dir = tfm_pair("tfm-hello-world-int8");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  core::memory_sink sink;
  ASSERT_TRUE(formats::create_patch(old_img, new_img, sink).ok());
  ab_slots s(old_img, new_img.size());
  EXPECT_EQ(apply_mcu(s, sink.data), -MALLORN_LITE_E_UNSUPPORTED);
}

TEST(lite_errors, bad_geometry_is_an_argument_error) {
  sim_power power;
  sim_flash a(power, 4096 * 3, 4096, 8), b(power, 4096 * 3, 1000, 8), c(power, 4096 * 3, 4096, 64);
  mallorn_lite_ctx ctx;
  EXPECT_EQ(mallorn_lite_init(&ctx, a.area(), b.area()), -MALLORN_LITE_E_ARG);
  EXPECT_EQ(mallorn_lite_init(&ctx, a.area(), c.area()), -MALLORN_LITE_E_ARG);
  EXPECT_EQ(mallorn_lite_init(&ctx, a.area(), a.area()), -MALLORN_LITE_E_ARG);
}

}  // namespace
}  // namespace mallorn::test
