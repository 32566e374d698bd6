#include <gtest/gtest.h>

#include "mallorn/core/patch_header.hpp"

using namespace mallorn::core;

namespace {
patch_header sample(std::uint8_t version = container_version) {
  patch_header h;
  h.version = version;
  h.format = model_format::tflite;
  h.flags = header_flag::neural;
  h.level = 19;
  h.source_size = 1234;
  h.target_size = 5678;
  h.source_sha256.fill(0xaa);
  h.target_sha256.fill(0xbb);
  h.target_version = 42;
  h.created_at = 1700000000;
  h.body_size = 99;
  h.body_sha256.fill(0xcc);
  h.tensors_modified = 2;
  h.tensors_unchanged = 7;
  h.tensor_stats = {{"conv/weights", tensor_encoding::xor_delta, 4096, 321}, {"fc/bias", tensor_encoding::literal, 40, 12}};
  return h;
}
}  // namespace

// Every test runs on each container version: 1 (fixed-width, still written for the mcu profile
// and read everywhere), 2 (compact, written by the standard-profile differ) and 3 (the compact
// layout for a single-frame body).
class PatchHeader : public ::testing::TestWithParam<std::uint8_t> {
 protected:
  patch_header sample() const { return ::sample(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Versions, PatchHeader, ::testing::Values(container_version, compact_container_version,
                                                                    single_frame_container_version),
                         [](const auto& info) { return "v" + std::to_string(info.param); });

TEST_P(PatchHeader, RoundTripsEveryField) {
  auto h = sample();
  auto enc = encode_header(h);
  if (GetParam() == container_version) EXPECT_GE(enc.size(), header_fixed_size);
  auto probe = parse_header(enc);
  ASSERT_TRUE(probe.ok()) << probe.err().what();
  ASSERT_TRUE(probe->header.has_value());
  const auto& p = *probe->header;
  EXPECT_EQ(probe->header_size, enc.size());
  EXPECT_EQ(p.format, model_format::tflite);
  EXPECT_TRUE(p.neural());
  EXPECT_FALSE(p.is_signed());
  EXPECT_EQ(p.level, 19);
  EXPECT_EQ(p.source_size, 1234u);
  EXPECT_EQ(p.target_size, 5678u);
  EXPECT_EQ(p.target_version, 42u);
  EXPECT_EQ(p.version, GetParam());
  EXPECT_EQ(p.created_at, 1700000000u);
  EXPECT_EQ(p.body_size, 99u);
  EXPECT_EQ(p.source_sha256, h.source_sha256);
  EXPECT_EQ(p.target_sha256, h.target_sha256);
  EXPECT_EQ(p.tensors_modified, 2u);
  EXPECT_EQ(p.tensors_unchanged, 7u);
  EXPECT_EQ(p.body_sha256, h.body_sha256);
  EXPECT_EQ(encode_header(p), enc) << "re-encoding a parsed header must give the same bytes";
  ASSERT_EQ(p.tensor_stats.size(), 2u);
  EXPECT_EQ(p.tensor_stats[0].name, "conv/weights");
  EXPECT_EQ(p.tensor_stats[1].patch_bytes, 12u);
}

TEST_P(PatchHeader, PrefixesAskForMoreAndNeverFail) {
  auto enc = encode_header(sample());
  for (std::size_t n = 0; n < enc.size(); ++n) {
    auto probe = parse_header(std::span(enc).first(n));
    ASSERT_TRUE(probe.ok()) << n;
    EXPECT_FALSE(probe->header.has_value()) << n;
  }
}

TEST_P(PatchHeader, EveryFlippedByteIsRejected) {
  auto enc = encode_header(sample());
  for (std::size_t i = 0; i < enc.size(); ++i) {
    auto bad = enc;
    bad[i] ^= 0x01;
    auto probe = parse_header(bad);
    bool rejected = !probe.ok() || !probe->header;
    EXPECT_TRUE(rejected) << "flip at byte " << i << " went unnoticed";
  }
}

TEST_P(PatchHeader, UnknownVersionIsReportedAsSuch) {
  auto enc = encode_header(sample());
  enc[4] = 4;
  auto probe = parse_header(enc);
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.err().code, errc::unsupported_version);
}

TEST_P(PatchHeader, SignatureCoversHeaderAndBodyHash) {
  auto keys = ed25519_generate();
  ASSERT_TRUE(keys.ok());
  auto h = sample();
  ASSERT_TRUE(sign_header(h, keys->private_key).ok());
  auto probe = parse_header(encode_header(h));
  ASSERT_TRUE(probe.ok() && probe->header);
  EXPECT_TRUE(probe->header->is_signed());
  EXPECT_TRUE(verify_header_signature(*probe->header, keys->public_key).ok());

  auto other = ed25519_generate();
  EXPECT_EQ(verify_header_signature(*probe->header, other->public_key).err().code, errc::signature_error);

  auto tampered = *probe->header;
  tampered.body_sha256[0] ^= 1;  // a different body
  EXPECT_FALSE(verify_header_signature(tampered, keys->public_key).ok());

  patch_header unsigned_h = sample();
  EXPECT_EQ(verify_header_signature(unsigned_h, keys->public_key).err().code, errc::signature_error);
}

TEST(CompactHeader, IsSmallAndStoresNoTimestampUnlessAsked) {
  patch_header h = sample(compact_container_version);
  h.created_at = 0;
  h.tensor_stats.clear();
  h.source_size = 700000;
  h.target_size = 700044;
  auto enc = encode_header(h);
  // magic 4 + version 1 + size 1 + 2 small-field bytes + varints (3 + 1 + 1 + 1 + 4 counts + 1)
  // + three SHA-256 (96) + check 4.
  EXPECT_EQ(enc.size(), 119u);
  EXPECT_EQ(parse_header(enc)->header->created_at, 0u);
  h.created_at = 1700000000;
  EXPECT_EQ(encode_header(h).size(), enc.size() + 5) << "a creation time costs its varint only";
  // No tensors at all (raw file, vocab-only GGUF): the tensor section is left out.
  h.created_at = 0;
  h.tensors_modified = h.tensors_unchanged = 0;
  auto bare = encode_header(h);
  EXPECT_EQ(bare.size(), 114u);
  auto probe = parse_header(bare);
  ASSERT_TRUE(probe.ok() && probe->header);
  EXPECT_EQ(probe->header->tensors_modified + probe->header->tensors_unchanged, 0u);
  EXPECT_EQ(encode_header(*probe->header), bare);
}

TEST(CompactHeader, ShrinkingTargetRoundTrips) {
  patch_header h = sample(compact_container_version);
  h.source_size = 1u << 30;
  h.target_size = 3;
  auto probe = parse_header(encode_header(h));
  ASSERT_TRUE(probe.ok() && probe->header);
  EXPECT_EQ(probe->header->target_size, 3u);
  EXPECT_EQ(probe->header->source_size, 1u << 30);
}

TEST(CompactHeader, HeaderSizeWidthIsChosenForItsOwnValue) {
  // Stats that push the header across 127 and 16383 bytes: the size varint grows by one byte.
  for (std::size_t names : {1u, 5u, 400u}) {
    patch_header h = sample(compact_container_version);
    h.tensor_stats.clear();
    for (std::size_t i = 0; i < names; ++i)
      h.tensor_stats.push_back({"t" + std::to_string(i * 7919), tensor_encoding::literal, i, i});
    auto enc = encode_header(h);
    auto probe = parse_header(enc);
    ASSERT_TRUE(probe.ok()) << probe.err().what();
    ASSERT_TRUE(probe->header);
    EXPECT_EQ(probe->header_size, enc.size());
    EXPECT_EQ(probe->header->tensor_stats.size(), names);
  }
}
