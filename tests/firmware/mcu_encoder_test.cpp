// The encoder side of the mcu profile: header fields, option checks, atomic file output, and the
// standard applier's refusal (profile 1 is for mallorn_lite only).
#include "lite_rig.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/core/patch_header.hpp"
#include "support/temp_dir.hpp"

namespace mallorn::test {
namespace {

TEST(mcu_encoder, header_says_profile_mcu_and_method_lzss) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img, {.level = 5, .target_version = 7});
  auto probe = core::parse_header(patch);
  ASSERT_TRUE(probe.ok() && probe->header);
  const auto& h = *probe->header;
  EXPECT_EQ(h.profile, core::patch_profile::mcu);
  EXPECT_EQ(h.compression, core::compression_method::lzss);
  EXPECT_EQ(h.format, core::model_format::tflite);
  EXPECT_EQ(h.level, 5);
  EXPECT_EQ(h.target_version, 7u);
  EXPECT_EQ(h.source_size, old_img.size());
  EXPECT_EQ(h.target_size, new_img.size());
  EXPECT_EQ(h.body_size + probe->header_size, patch.size());
  EXPECT_EQ(h.body_sha256, core::sha256_of(std::span(patch).subspan(probe->header_size)));
  EXPECT_TRUE(h.tensor_stats.empty());
}

TEST(mcu_encoder, the_standard_applier_refuses_profile_one) {
  auto dir = tfm_pair("tfm-micro-speech_realign");
  auto old_img = load(dir / "old.tflite"), new_img = load(dir / "new.tflite");
  auto patch = make_mcu_patch(old_img, new_img);
  core::memory_source old_src(old_img);
  core::memory_sink out;
  core::patch_applier applier(old_src, out);
  auto r = applier.feed(patch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, core::errc::unsupported_version);
}

TEST(mcu_encoder, options_are_checked) {
  std::vector<std::uint8_t> a(1000, 1), b(1000, 2);
  core::memory_sink sink;
  EXPECT_EQ(formats::create_mcu_patch(a, b, sink, {.level = 0}).err().code, core::errc::invalid_argument);
  EXPECT_EQ(formats::create_mcu_patch(a, b, sink, {.block_size = 3000}).err().code, core::errc::invalid_argument);
  EXPECT_EQ(formats::create_mcu_patch(a, b, sink, {.block_size = 32768}).err().code, core::errc::invalid_argument);
  EXPECT_EQ(formats::create_mcu_patch(a, b, sink, {.old_window = 100}).err().code, core::errc::invalid_argument);
  EXPECT_TRUE(sink.data.empty());
}

TEST(mcu_encoder, edge_images_round_trip) {
  std::vector<std::vector<std::uint8_t>> images = {{}, {7}, std::vector<std::uint8_t>(5000, 0), std::vector<std::uint8_t>(20000, 0xFF)};
  std::mt19937 rng(5);
  std::vector<std::uint8_t> noise(30000);
  for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
  images.push_back(noise);
  // Repeats far apart: matches into output that is already in flash, not in the write buffer.
  std::vector<std::uint8_t> repeats;
  for (int i = 0; i < 6; ++i) repeats.insert(repeats.end(), noise.begin(), noise.begin() + 3000 + i);
  images.push_back(repeats);
  for (const auto& o : images)
    for (const auto& n : images) {
      auto patch = make_mcu_patch(o, n, {.block_size = 1024});
      ab_slots s(o, std::max<std::size_t>({o.size(), n.size(), 1}));
      ASSERT_EQ(apply_mcu(s, patch, random_split(3, 200)), 0) << o.size() << " -> " << n.size();
      EXPECT_TRUE(std::equal(n.begin(), n.end(), s.b.bytes().begin()));
    }
}

TEST(mcu_encoder, old_reads_respect_the_window) {
  // The second half of the new image is the first half of the old one: with a small window the
  // encoder must not seek back there once it has read far ahead, and the applier agrees.
  std::mt19937 rng(9);
  std::vector<std::uint8_t> old_img(64 * 1024);
  for (auto& b : old_img) b = static_cast<std::uint8_t>(rng());
  std::vector<std::uint8_t> new_img(old_img.begin() + 32 * 1024, old_img.end());
  new_img.insert(new_img.end(), old_img.begin(), old_img.begin() + 32 * 1024);
  auto wide = make_mcu_patch(old_img, new_img, {.old_window = 1u << 20});
  auto narrow = make_mcu_patch(old_img, new_img, {.old_window = 4096});
  EXPECT_LT(wide.size(), 2000u);
  EXPECT_GT(narrow.size(), 30000u);  // the back half had to be sent as literals
  for (const auto* p : {&wide, &narrow}) {
    ab_slots s(old_img, new_img.size());
    ASSERT_EQ(apply_mcu(s, *p), 0);
    EXPECT_TRUE(std::equal(new_img.begin(), new_img.end(), s.b.bytes().begin()));
  }
}

TEST(mcu_encoder, file_output_is_atomic) {
  temp_dir dir("mcu-encoder");
  auto pair = tfm_pair("tfm-hello-world-int8");
  auto out = dir.path() / "update.mlrn";
  auto st = formats::create_mcu_patch_file(pair / "old.tflite", pair / "new.tflite", out, {});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(std::filesystem::file_size(out), st->patch_size);
  auto missing = formats::create_mcu_patch_file(pair / "nope.tflite", pair / "new.tflite", dir.path() / "x.mlrn", {});
  EXPECT_FALSE(missing.ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "x.mlrn"));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);  // no temp files left behind
}

}  // namespace
}  // namespace mallorn::test
