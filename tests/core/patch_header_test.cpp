#include <gtest/gtest.h>

#include "mallorn/core/patch_header.hpp"

using namespace mallorn::core;

namespace {
patch_header sample() {
  patch_header h;
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

TEST(PatchHeader, RoundTripsEveryField) {
  auto h = sample();
  auto enc = encode_header(h);
  ASSERT_EQ(enc.size() >= header_fixed_size, true);
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
  EXPECT_EQ(p.body_sha256, h.body_sha256);
  ASSERT_EQ(p.tensor_stats.size(), 2u);
  EXPECT_EQ(p.tensor_stats[0].name, "conv/weights");
  EXPECT_EQ(p.tensor_stats[1].patch_bytes, 12u);
}

TEST(PatchHeader, PrefixesAskForMoreAndNeverFail) {
  auto enc = encode_header(sample());
  for (std::size_t n = 0; n < enc.size(); ++n) {
    auto probe = parse_header(std::span(enc).first(n));
    ASSERT_TRUE(probe.ok()) << n;
    EXPECT_FALSE(probe->header.has_value()) << n;
  }
}

TEST(PatchHeader, EveryFlippedByteIsRejected) {
  auto enc = encode_header(sample());
  for (std::size_t i = 0; i < enc.size(); ++i) {
    auto bad = enc;
    bad[i] ^= 0x01;
    auto probe = parse_header(bad);
    bool rejected = !probe.ok() || !probe->header;
    EXPECT_TRUE(rejected) << "flip at byte " << i << " went unnoticed";
  }
}

TEST(PatchHeader, UnknownVersionIsReportedAsSuch) {
  auto enc = encode_header(sample());
  enc[4] = 2;
  auto probe = parse_header(enc);
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.err().code, errc::unsupported_version);
}

TEST(PatchHeader, SignatureCoversHeaderAndBodyHash) {
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
