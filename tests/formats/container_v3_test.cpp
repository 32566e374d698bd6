// Tiny patches: a body that is one gap data frame is written as container version 3 (the compact
// header, then that frame's payload alone). It must apply in any chunking, damage to its header
// must be refused, and older patches (version 2, checked in) must still apply.
#include <gtest/gtest.h>

#include <optional>

#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"

using namespace mallorn;

namespace {

using test::read_or_fail;

struct gguf_pair {
  std::vector<std::uint8_t> old_model, new_model, patch;  // patch at the server's setting
};

// Empty when the pair is not there.
std::optional<gguf_pair> server_patch(const char* name) {
  auto dir = test::pair_dir(name);
  if (!std::filesystem::exists(dir)) return std::nullopt;
  gguf_pair p{read_or_fail(dir / "old.gguf"), read_or_fail(dir / "new.gguf"), {}};
  formats::diff_options o;
  o.level = 19;
  o.neural = true;
  p.patch = test::make_patch(p.old_model, p.new_model, o);
  return p;
}

}  // namespace

TEST(ContainerV3, CheckedInV2PatchStillApplies) {
  auto dir = test::pair_dir("gguf-vocab-llama-spm_0508-to-0512");
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " missing";
  // Made by the differ before version 3 (--level 19 --neural): v2 header, ops + approx gap frame + end.
  auto patch = read_or_fail(std::filesystem::path(MALLORN_SOURCE_DIR) / "tests" / "formats" / "data" / "llama-spm.v2.mlrn");
  ASSERT_GT(patch.size(), 5u);
  ASSERT_EQ(patch[4], core::compact_container_version) << "the checked-in file must be a version 2 patch";
  auto old_model = read_or_fail(dir / "old.gguf");
  auto new_model = read_or_fail(dir / "new.gguf");
  for (std::size_t chunk : {std::size_t{1}, std::size_t{0}, patch.size()}) {
    auto out = test::apply_in_chunks(old_model, patch, chunk);
    ASSERT_TRUE(out.ok()) << out.err().what();
    EXPECT_TRUE(*out == new_model) << "chunk " << chunk;
  }
}

TEST(ContainerV3, TinyPairIsASingleFrameBodyThatApplies) {
  auto pair = server_patch("gguf-vocab-llama-spm_0508-to-0512");
  if (!pair) GTEST_SKIP() << "pair missing";
  const auto& [old_model, new_model, patch] = *pair;
  auto v2 = read_or_fail(std::filesystem::path(MALLORN_SOURCE_DIR) / "tests" / "formats" / "data" / "llama-spm.v2.mlrn");
  EXPECT_LT(patch.size() + 40, v2.size()) << "single frame and zero runs save at least 40 bytes here";
  auto probe = core::parse_header(patch);
  ASSERT_TRUE(probe.ok() && probe->header);
  EXPECT_EQ(probe->header->version, core::single_frame_container_version);
  EXPECT_TRUE(probe->header->single_frame_body());
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{0}, patch.size()}) {
    auto out = test::apply_in_chunks(old_model, patch, chunk);
    ASSERT_TRUE(out.ok()) << out.err().what();
    EXPECT_TRUE(*out == new_model) << "chunk " << chunk;
  }
  // The file API reads the header in two steps.
  auto h = core::parse_header(std::span<const std::uint8_t>(patch).first(probe->header_size));
  ASSERT_TRUE(h.ok() && h->header);
  EXPECT_EQ(h->header->body_size, patch.size() - probe->header_size);
}

TEST(ContainerV3, DamagedHeaderOrBodyIsRefused) {
  auto pair = server_patch("gguf-vocab-bert-bge_0508-to-0517");
  if (!pair) GTEST_SKIP() << "pair missing";
  const auto& [old_model, new_model, patch] = *pair;
  ASSERT_EQ(patch[4], core::single_frame_container_version);
  for (std::size_t i = 0; i < patch.size(); ++i) {
    for (std::uint8_t flip : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      auto damaged = patch;
      damaged[i] ^= flip;
      auto out = test::apply_in_chunks(old_model, damaged, 0);
      EXPECT_FALSE(out.ok()) << "byte " << i << " flip " << int(flip);
    }
  }
  for (std::size_t cut : {std::size_t{5}, patch.size() / 2, patch.size() - 1}) {
    auto out = test::apply_in_chunks(old_model, std::span<const std::uint8_t>(patch).first(cut), 0);
    EXPECT_FALSE(out.ok()) << "truncated to " << cut;
  }
  auto longer = patch;
  longer.push_back(0);
  EXPECT_FALSE(test::apply_in_chunks(old_model, longer, 0).ok()) << "trailing byte";
}

TEST(ContainerV3, VersionAndBodyFormBitMustAgree) {
  auto pair = server_patch("gguf-vocab-bert-bge_0508-to-0517");
  if (!pair) GTEST_SKIP() << "pair missing";
  const auto& [old_model, new_model, patch] = *pair;
  auto probe = core::parse_header(patch);
  ASSERT_TRUE(probe.ok() && probe->header);
  auto h = *probe->header;
  std::vector<std::uint8_t> body(patch.begin() + static_cast<std::ptrdiff_t>(probe->header_size), patch.end());
  // The same header re-encoded as version 2 (valid check bytes) claims a framed body: refused,
  // because the single frame is not an ops frame.
  h.version = core::compact_container_version;
  auto v2 = core::encode_header(h);
  auto parsed = core::parse_header(v2);
  ASSERT_TRUE(parsed.ok() && parsed->header);
  v2.insert(v2.end(), body.begin(), body.end());
  EXPECT_FALSE(test::apply_in_chunks(old_model, v2, 0).ok());
  // A version byte changed without the bit (or the bit without the version) fails the header,
  // even before its check bytes: one encoding per header.
  auto as_v2 = patch;
  as_v2[4] = core::compact_container_version;
  EXPECT_FALSE(core::parse_header(as_v2).ok());
  auto v2_with_bit = core::encode_header(h);
  // kinds is the byte after the header-size varint (one byte here).
  v2_with_bit[6] |= 0x80;
  EXPECT_FALSE(core::parse_header(v2_with_bit).ok());
  auto v4 = patch;
  v4[4] = 4;
  auto r = core::parse_header(v4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, core::errc::unsupported_version);
}
