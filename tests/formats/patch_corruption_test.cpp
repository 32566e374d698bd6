// Bad input gets a clear error: every flipped byte, every truncation, wrong source, wrong key,
// tampered signature, wrong target hash, downgrade, trailing garbage.
#include <gtest/gtest.h>

#include "mallorn/core/io.hpp"
#include "support/models.hpp"
#include "support/patch_roundtrip.hpp"

using namespace mallorn;

namespace {
struct fixture_data {
  std::vector<std::uint8_t> old_model, new_model, patch;
};

const fixture_data& small_pair() {
  static fixture_data d = [] {
    fixture_data f;
    auto dir = test::models_dir() / "pairs" / "tfm-hello-world-int8";
    f.old_model = *core::read_file(dir / "old.tflite");
    f.new_model = *core::read_file(dir / "new.tflite");
    f.patch = test::make_patch(f.old_model, f.new_model);
    return f;
  }();
  return d;
}

core::errc apply_error(const std::vector<std::uint8_t>& old_model, std::span<const std::uint8_t> patch,
                       const core::apply_options& opts = {}) {
  auto r = test::apply_in_chunks(old_model, patch, 97, opts);
  return r.ok() ? core::errc{} : r.err().code;
}
}  // namespace

TEST(PatchCorruption, IntactPatchApplies) {
  const auto& d = small_pair();
  auto out = test::apply_in_chunks(d.old_model, d.patch, 1);
  ASSERT_TRUE(out.ok()) << out.err().what();
  EXPECT_TRUE(*out == d.new_model);
}

TEST(PatchCorruption, EveryFlippedByteIsAnError) {
  const auto& d = small_pair();
  for (std::size_t i = 0; i < d.patch.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80}) {
      auto bad = d.patch;
      bad[i] ^= mask;
      EXPECT_NE(apply_error(d.old_model, bad), core::errc{}) << "flip " << int(mask) << " at byte " << i;
    }
  }
}

TEST(PatchCorruption, EveryTruncationIsInvalidPatch) {
  const auto& d = small_pair();
  for (std::size_t n = 0; n < d.patch.size(); ++n)
    EXPECT_EQ(apply_error(d.old_model, std::span(d.patch).first(n)), core::errc::invalid_patch) << "length " << n;
}

TEST(PatchCorruption, TrailingBytesAreAnError) {
  auto bad = small_pair().patch;
  bad.push_back(0);
  EXPECT_EQ(apply_error(small_pair().old_model, bad), core::errc::invalid_patch);
}

TEST(PatchCorruption, WrongSourceModelIsSourceHashMismatch) {
  const auto& d = small_pair();
  auto wrong = d.old_model;
  wrong[wrong.size() / 2] ^= 1;
  EXPECT_EQ(apply_error(wrong, d.patch), core::errc::source_hash_mismatch);
  EXPECT_EQ(apply_error(d.new_model, d.patch), core::errc::source_hash_mismatch);
}

TEST(PatchCorruption, WrongTargetHashIsTargetHashMismatch) {
  const auto& d = small_pair();
  auto probe = core::parse_header(d.patch);
  ASSERT_TRUE(probe.ok() && probe->header);
  auto h = *probe->header;
  h.target_sha256[5] ^= 1;  // a header that lies about the target (re-encoded, so it parses)
  auto bad = core::encode_header(h);
  bad.insert(bad.end(), d.patch.begin() + probe->header_size, d.patch.end());
  EXPECT_EQ(apply_error(d.old_model, bad), core::errc::target_hash_mismatch);
}

TEST(PatchCorruption, SignaturesAreEnforcedWhenAKeyIsConfigured) {
  const auto& d = small_pair();
  auto keys = core::ed25519_generate();
  auto other = core::ed25519_generate();
  ASSERT_TRUE(keys.ok() && other.ok());
  auto signed_patch = core::sign_patch(d.patch, keys->private_key);
  ASSERT_TRUE(signed_patch.ok());

  core::apply_options good{keys->public_key};
  core::apply_options wrong{other->public_key};
  EXPECT_EQ(apply_error(d.old_model, *signed_patch, good), core::errc{});
  EXPECT_EQ(apply_error(d.old_model, *signed_patch, wrong), core::errc::signature_error);
  EXPECT_EQ(apply_error(d.old_model, d.patch, good), core::errc::signature_error) << "unsigned refused";
  EXPECT_EQ(apply_error(d.old_model, *signed_patch), core::errc{}) << "no key configured: still applies";

  auto probe = core::parse_header(*signed_patch);
  std::size_t sig_at = probe->header_size - 64;
  for (std::size_t i = sig_at; i < probe->header_size; i += 7) {
    auto bad = *signed_patch;
    bad[i] ^= 0x10;
    EXPECT_EQ(apply_error(d.old_model, bad, good), core::errc::signature_error) << i;
  }
}

TEST(PatchCorruption, DowngradeIsRefused) {
  const auto& d = small_pair();
  formats::diff_options o;
  o.target_version = 5;
  auto patch = test::make_patch(d.old_model, d.new_model, o);
  core::apply_options newer;
  newer.min_target_version = 6;
  EXPECT_EQ(apply_error(d.old_model, patch, newer), core::errc::downgrade_refused);
  newer.min_target_version = 5;
  EXPECT_EQ(apply_error(d.old_model, patch, newer), core::errc{});
}

TEST(PatchCorruption, SigningADamagedPatchIsRefused) {
  auto bad = small_pair().patch;
  bad.back() ^= 1;
  auto keys = core::ed25519_generate();
  EXPECT_EQ(core::sign_patch(bad, keys->private_key).err().code, core::errc::invalid_patch);
}
