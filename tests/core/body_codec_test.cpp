#include <gtest/gtest.h>

#include <random>

#include "../../core/src/float_cast.hpp"
#include "mallorn/core/body_format.hpp"
#include "mallorn/core/io.hpp"
#include "support/models.hpp"

namespace body = mallorn::core::body;
using bytes_t = std::vector<std::uint8_t>;

namespace {
bytes_t random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  bytes_t b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}
// A payload cut short anywhere, or with a byte appended, must not decode.
void expect_cuts_and_trailing_bytes_refused(body::data_frame f, const bytes_t& payload, const bytes_t& ref) {
  bytes_t out;
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, payload.size() / 2, payload.size() - 1}) {
    f.payload = std::span<const std::uint8_t>(payload).first(cut);
    EXPECT_FALSE(body::decode_payload(f, ref, out).ok()) << cut;
  }
  bytes_t longer = payload;
  longer.push_back(0);
  f.payload = longer;
  EXPECT_FALSE(body::decode_payload(f, ref, out).ok()) << "trailing bytes";
}
}  // namespace

TEST(BytePlaning, RoundTripsEveryWidthWithTail) {
  for (unsigned w : {1u, 2u, 4u, 8u, 18u, 210u}) {
    auto in = random_bytes(1000 + w / 2, w);
    bytes_t planed, back;
    body::plane(in, w, planed);
    body::unplane(planed, w, back);
    EXPECT_EQ(back, in) << "width " << w;
    if (w == 4) EXPECT_EQ(planed[1], in[4]) << "byte 0 of element 1 follows byte 0 of element 0";
  }
}

TEST(FloatCast, HalfRoundTripIsExactForEveryNonNaNHalf) {
  using namespace mallorn::core::detail;
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<std::uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(FloatCast, RoundsToNearestEven) {
  using namespace mallorn::core::detail;
  EXPECT_EQ(f32_to_f16(f32_bits(1.0f)), 0x3c00);
  EXPECT_EQ(f32_to_f16(f32_bits(0.1f)), 0x2e66);
  EXPECT_EQ(f32_to_f16(f32_bits(65504.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(f32_bits(65520.0f)), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(f32_to_f16(f32_bits(5.9604645e-8f)), 0x0001);
  EXPECT_EQ(f32_to_f16(f32_bits(1.0f + 1.0f / 2048)), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_bf16(f32_bits(1.0f)), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), f32_bits(1.0f));
}

TEST(DataFrame, EveryTransformRoundTrips) {
  struct tc { body::transform tf; std::size_t out, ref; std::uint8_t pw, ew; };
  const tc cases[] = {
      {body::transform::raw, 4096, 0, 4, 1},      {body::transform::prefix, 4096, 8192, 1, 1},
      {body::transform::xor_ref, 4096, 4096, 4, 1}, {body::transform::sub_ref, 4099, 4099, 2, 2},
      {body::transform::sub_ref, 4096, 4096, 1, 8}, {body::transform::cast_f32_f16, 2048, 4096, 2, 1},
      {body::transform::cast_f32_bf16, 2048, 4096, 1, 1}, {body::transform::cast_f16_f32, 4096, 2048, 4, 1},
      {body::transform::cast_bf16_f32, 4096, 2048, 1, 1},
      {body::transform::context_ref, 4096, 4096, 1, 4}, {body::transform::context_ref, 4097, 0, 1, 2},
      {body::transform::lzma, 4096, 8192, 1, 1}, {body::transform::lzma, 4096, 0, 1, 1},
      {body::transform::bwt, 4096, 0, 2, 1},      {body::transform::bwt, 4099, 4099, 4, 4},
      {body::transform::bwt, 4096, 4096, 1, 2},
  };
  for (const auto& c : cases) {
    auto target = random_bytes(c.out, 1);
    auto ref = random_bytes(c.ref, 2);
    body::data_frame f;
    f.tf = c.tf;
    f.plane_width = c.pw;
    f.elem_width = c.ew;
    f.out_len = c.out;
    if (c.ref) f.reference.push_back({0, c.ref});
    ASSERT_TRUE(body::check_data_frame(f, c.ref).ok()) << int(c.tf);
    auto payload = body::encode_payload(f, target, ref, 3);
    f.payload = payload;
    bytes_t out;
    ASSERT_TRUE(body::decode_payload(f, ref, out).ok()) << int(c.tf);
    EXPECT_EQ(out, target) << int(c.tf);
  }
}

// LZMA frames: the reference works as a dictionary (a target made of reference pieces costs little),
// and damaged or truncated payloads are refused, never overrun.
TEST(DataFrame, LzmaUsesTheReferenceAndRefusesDamage) {
  auto ref = random_bytes(64 << 10, 8);
  bytes_t target(ref.begin() + 1000, ref.begin() + 41000);
  auto extra = random_bytes(500, 9);
  target.insert(target.begin() + 20000, extra.begin(), extra.end());
  body::data_frame f;
  f.tf = body::transform::lzma;
  f.out_len = target.size();
  f.reference.push_back({0, ref.size()});
  ASSERT_TRUE(body::check_data_frame(f, ref.size()).ok());
  auto payload = body::encode_payload(f, target, ref, 19);
  EXPECT_LT(payload.size(), 1000u) << "40 KB found in the dictionary plus 500 new bytes";
  f.payload = payload;
  bytes_t out;
  ASSERT_TRUE(body::decode_payload(f, ref, out).ok());
  EXPECT_EQ(out, target);
  std::mt19937 rng(3);
  int refused = 0;
  for (int k = 0; k < 200; ++k) {
    auto damaged = payload;
    damaged[rng() % damaged.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    f.payload = damaged;
    auto r = body::decode_payload(f, ref, out);
    EXPECT_EQ(out.size(), target.size());
    refused += !r.ok();
  }
  EXPECT_GT(refused, 150) << "most damage shows as a broken LZMA2 stream";
  expect_cuts_and_trailing_bytes_refused(f, payload, ref);
}

TEST(DataFrame, ExactCastLeavesAlmostNothing) {
  using namespace mallorn::core::detail;
  std::mt19937 rng(7);
  std::normal_distribution<float> weight(0.f, 0.05f);
  std::size_t n = 100000;
  bytes_t f32(n * 4), f16(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t x = f32_bits(weight(rng));
    std::uint16_t h = f32_to_f16(x);
    std::memcpy(&f32[4 * i], &x, 4);
    std::memcpy(&f16[2 * i], &h, 2);
  }
  body::data_frame f;
  f.tf = body::transform::cast_f32_f16;
  f.out_len = f16.size();
  f.reference.push_back({0, f32.size()});
  auto payload = body::encode_payload(f, f16, f32, 3);
  EXPECT_LT(payload.size(), 200u) << "an exact re-cast must cost (almost) nothing";
}

TEST(DataFrame, RequantizationRoundTripsAndNeedsParameters) {
  auto ref = random_bytes(4000 * 4, 3);
  for (std::size_t i = 0; i < ref.size(); i += 4) ref[i + 3] = 0x3c;  // finite, moderate floats
  auto target = random_bytes(4000, 4);
  body::data_frame f;
  f.tf = body::transform::quant_f32_i8;
  f.out_len = target.size();
  f.reference.push_back({0, ref.size()});
  ASSERT_TRUE(body::check_data_frame(f, ref.size()).ok());
  EXPECT_TRUE(body::encode_payload(f, target, ref, 3).empty()) << "no groups given";
  auto groups = body::fit_quantization(ref, target, true, 4);
  auto payload = body::encode_payload(f, target, ref, 3, groups);
  f.payload = payload;
  bytes_t out;
  ASSERT_TRUE(body::decode_payload(f, ref, out).ok());
  EXPECT_EQ(out, target);
  payload[0] = 3;  // 3 groups do not divide 4000 elements
  f.payload = payload;
  EXPECT_FALSE(body::decode_payload(f, ref, out).ok());
}

// bzip2 frames on real metadata (the flatbuffer tables of a real TFLite model, which bsdiff's bzip2
// packs tighter than zstd): exact round trip, the mode byte must fit the reference, and damaged,
// truncated or over-long payloads are refused, never overrun.
TEST(DataFrame, BwtPacksRealTablesAndRefusesDamage) {
  auto model = mallorn::core::read_file(mallorn::test::models_dir() / "pairs" / "tfm-mnist-lstm" / "new.tflite");
  ASSERT_TRUE(model.ok());
  bytes_t target(model->begin(), model->begin() + std::min<std::size_t>(model->size(), 32768));
  body::data_frame f;
  f.tf = body::transform::bwt;
  f.out_len = target.size();
  ASSERT_TRUE(body::check_data_frame(f, 0).ok());
  auto payload = body::encode_payload(f, target, {}, 19);
  ASSERT_FALSE(payload.empty());
  EXPECT_EQ(payload[0], static_cast<std::uint8_t>(body::bwt_mode::raw));
  EXPECT_LT(payload.size(), target.size()) << "a real model's bytes compress";
  f.payload = payload;
  bytes_t out;
  ASSERT_TRUE(body::decode_payload(f, {}, out).ok());
  EXPECT_EQ(out, target);
  // A raw-mode payload with a reference, or an xor-mode one without, does not fit.
  auto ref = random_bytes(target.size(), 4);
  f.reference.push_back({0, ref.size()});
  EXPECT_FALSE(body::decode_payload(f, ref, out).ok()) << "raw mode with a reference";
  f.reference.clear();
  bytes_t xor_mode = payload;
  xor_mode[0] = static_cast<std::uint8_t>(body::bwt_mode::xor_ref);
  f.payload = xor_mode;
  EXPECT_FALSE(body::decode_payload(f, {}, out).ok()) << "xor mode without a reference";
  xor_mode[0] = 3;
  EXPECT_FALSE(body::decode_payload(f, {}, out).ok()) << "unknown mode";
  std::mt19937 rng(5);
  int refused = 0;
  for (int k = 0; k < 200; ++k) {
    auto damaged = payload;
    damaged[1 + rng() % (damaged.size() - 1)] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    f.payload = damaged;
    auto r = body::decode_payload(f, {}, out);
    EXPECT_EQ(out.size(), target.size());
    refused += !r.ok();
  }
  EXPECT_GT(refused, 150) << "bzip2's block CRC and structure catch most damage";
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, payload.size() / 2, payload.size() - 1}) {
    f.payload = std::span<const std::uint8_t>(payload).first(cut);
    EXPECT_FALSE(body::decode_payload(f, {}, out).ok()) << cut;
  }
  bytes_t longer = payload;
  longer.push_back(0);
  f.payload = longer;
  EXPECT_FALSE(body::decode_payload(f, {}, out).ok()) << "trailing bytes";
  f.payload = payload;
  f.out_len = target.size() + 1;
  EXPECT_FALSE(body::decode_payload(f, {}, out).ok()) << "stream shorter than the frame";
}

TEST(DataFrame, RejectsInconsistentFrames) {
  body::data_frame f;
  f.tf = body::transform::xor_ref;
  f.out_len = 100;
  f.reference.push_back({0, 99});
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());  // ref length differs
  f.reference[0] = {950, 100};
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());  // outside the old model
  f.reference[0] = {0, 100};
  f.out_len = body::max_chunk + 1;
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());  // too large
  f.out_len = 100;
  f.elem_width = 3;
  EXPECT_FALSE(body::check_data_frame(f, 1000).ok());
}

TEST(OpsFrame, RoundTripsWithDeltaCodedCopies) {
  std::vector<body::op> ops = {{body::op_kind::copy, 10, 500}, {body::op_kind::gap, 7}, {body::op_kind::copy, 3, 100},
                               {body::op_kind::tensor, 4096}};
  std::uint64_t enc_state = 0, dec_state = 0;
  auto payload = body::encode_ops(ops, enc_state, 3);
  auto back = body::decode_ops(payload, dec_state);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ((*back)[i].kind, ops[i].kind);
    EXPECT_EQ((*back)[i].length, ops[i].length);
    EXPECT_EQ((*back)[i].src_offset, ops[i].src_offset);
  }
  EXPECT_EQ(enc_state, dec_state);
}

// sparse_approx: bsdiff's parts with the difference bytes as zero runs; each of the three coders
// (stored, zstd without magic, LZMA2) must decode, and damage must not decode silently to the target.
TEST(DataFrame, SparseApproxRoundTripsWithEveryCoderAndRefusesDamage) {
  auto ref = random_bytes(300'000, 11);
  // Target: the reference with a few bytes changed, a 40-byte insertion, and one big stretch moved.
  bytes_t target(ref.begin(), ref.begin() + 200'000);
  target[1000] ^= 5, target[150'000] += 1;
  auto inserted = random_bytes(40, 12);
  target.insert(target.begin() + 100'000, inserted.begin(), inserted.end());
  target.insert(target.end(), ref.begin() + 250'000, ref.end());
  // The parts bsdiff would find: add 100000 (two differences), 40 extra, add the rest, seek on.
  std::vector<body::approx_step> steps{{100'000, 40, 0}, {100'000, 0, 50'000}, {50'000, 0, 0}};
  bytes_t diff(250'000, 0);
  diff[1000] = static_cast<std::uint8_t>(target[1000] - ref[1000]);
  diff[150'000] = 1;
  body::data_frame f;
  f.tf = body::transform::sparse_approx;
  f.out_len = target.size();
  f.reference.push_back({0, ref.size()});
  ASSERT_TRUE(body::check_data_frame(f, ref.size()).ok());
  auto payload = body::pack_sparse_approx(steps, diff, inserted, 19);
  EXPECT_LT(payload.size(), 80u) << "three control triples, two differences and 40 new bytes";
  f.payload = payload;
  bytes_t out;
  ASSERT_TRUE(body::decode_payload(f, ref, out).ok());
  EXPECT_EQ(out, target);
  EXPECT_LE(payload[0], 2) << "coder: stored, zstd or LZMA2";
  std::mt19937 rng(5);
  int wrong = 0;
  for (int k = 0; k < 300; ++k) {
    auto damaged = payload;
    damaged[rng() % damaged.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    f.payload = damaged;
    auto r = body::decode_payload(f, ref, out);
    wrong += r.ok() && out == target;
  }
  // Only bytes that carry nothing (the last step's seek) may change without effect; the container's
  // body SHA-256 covers those.
  EXPECT_LT(wrong, 15) << "damage that decodes to the same output";
  expect_cuts_and_trailing_bytes_refused(f, payload, ref);
}

TEST(DataFrame, SparseApproxRefusesRunsThatDoNotCoverTheDifferences) {
  bytes_t ref(1000, 7);
  body::data_frame f;
  f.tf = body::transform::sparse_approx;
  f.out_len = 1000;
  f.reference.push_back({0, ref.size()});
  bytes_t out;
  auto stored = [&](bytes_t ctrl, bytes_t sparse) {
    bytes_t p{0};  // stored
    p.push_back(static_cast<std::uint8_t>(ctrl.size()));
    p.push_back(static_cast<std::uint8_t>(sparse.size()));
    p.push_back(0);  // no extra bytes
    p.insert(p.end(), ctrl.begin(), ctrl.end());
    p.insert(p.end(), sparse.begin(), sparse.end());
    return p;
  };
  // add 1000 (varint e8 07), extra 0, seek 0; differences: 1000 zeros.
  auto good = stored({0xe8, 0x07, 0, 0}, {0xe8, 0x07, 0});
  f.payload = good;
  ASSERT_TRUE(body::decode_payload(f, ref, out).ok());
  EXPECT_EQ(out, ref);
  for (const auto& bad_sparse : {bytes_t{0xe7, 0x07, 0}, bytes_t{0xe8, 0x07, 1, 9}, bytes_t{0, 0, 0xe8, 0x07, 0},
                                 bytes_t{0xe8, 0x07, 0, 0, 0}}) {
    auto p = stored({0xe8, 0x07, 0, 0}, bad_sparse);
    f.payload = p;
    EXPECT_FALSE(body::decode_payload(f, ref, out).ok()) << bad_sparse.size();
  }
  auto unknown_coder = good;
  unknown_coder[0] = 3;
  f.payload = unknown_coder;
  EXPECT_FALSE(body::decode_payload(f, ref, out).ok());
  f.payload = good;
  f.plane_width = 2;
  EXPECT_FALSE(body::check_data_frame(f, ref.size()).ok()) << "no byte planing";
}
