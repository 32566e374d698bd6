// The index_bitmap transform: exact round trips, a real size gain on pruned-matrix indices, and a
// decoder that refuses every malformed payload without reading or writing out of bounds.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "../../core/src/zstd_codec.hpp"
#include "mallorn/core/body_format.hpp"
#include "mallorn/core/bytes.hpp"

namespace body = mallorn::core::body;
using bytes_t = std::vector<std::uint8_t>;

namespace {

// Flatbuffer-like bytes with two CSR index vectors inside: `rows` rows of columns kept with
// probability 1/4 out of `columns`, as u8 and as u16 elements. Returns the bytes and the vectors.
std::pair<bytes_t, std::vector<body::index_vector>> pruned_layout(unsigned rows, unsigned columns, unsigned seed) {
  std::mt19937 rng(seed);
  bytes_t b;
  std::vector<body::index_vector> vectors;
  auto metadata = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(i % 7 == 0 ? rng() : i));
  };
  for (std::uint8_t width : {std::uint8_t{1}, std::uint8_t{2}}) {
    metadata(300);
    body::index_vector v{b.size(), 0, width};
    unsigned cols = width == 1 ? std::min(columns, 256u) : columns;
    for (unsigned r = 0; r < rows; ++r)
      for (unsigned c = 0; c < cols; ++c)
        if (rng() % 4 == 0) {
          mallorn::core::put_le(b, c, width);
          ++v.count;
        }
    vectors.push_back(v);
  }
  metadata(200);
  return {b, vectors};
}

body::data_frame frame_for(const bytes_t& target, const bytes_t& payload) {
  body::data_frame f;
  f.tf = body::transform::index_bitmap;
  f.out_len = target.size();
  f.payload = payload;
  return f;
}

// A hand-made payload: inner raw over `rewritten`, with the given vector table entries
// (gap, width, count, universe, rows).
bytes_t hand_payload(const std::vector<std::array<std::uint64_t, 5>>& table, const bytes_t& rewritten) {
  bytes_t p;
  mallorn::core::put_u8(p, static_cast<std::uint8_t>(body::transform::raw));
  mallorn::core::put_varint(p, table.size());
  for (const auto& e : table) {
    mallorn::core::put_varint(p, e[0]);
    mallorn::core::put_u8(p, static_cast<std::uint8_t>(e[1]));
    for (int i = 2; i < 5; ++i) mallorn::core::put_varint(p, e[i]);
  }
  auto z = mallorn::core::detail::zstd_compress(rewritten, {}, 3);
  p.insert(p.end(), z.begin(), z.end());
  return p;
}

}  // namespace

TEST(IndexBitmap, RoundTripsAndPacksPrunedIndicesFarSmaller) {
  auto [target, vectors] = pruned_layout(400, 1024, 7);
  auto plain = mallorn::core::detail::zstd_compress(target, {}, 19);
  for (auto inner : {body::transform::raw, body::transform::lzma, body::transform::bwt}) {
    auto payload = body::pack_index_bitmap(vectors, inner, target, {}, 19);
    ASSERT_FALSE(payload.empty()) << int(inner);
    auto f = frame_for(target, payload);
    ASSERT_TRUE(body::check_data_frame(f, 0).ok());
    bytes_t out;
    auto r = body::decode_payload(f, {}, out);
    ASSERT_TRUE(r.ok()) << r.err().what();
    EXPECT_EQ(out, target) << int(inner);
    // Indices kept with probability 1/4 carry about 0.81 bits per column: zstd -19 of the integers
    // gets nowhere near that.
    EXPECT_LT(payload.size() * 10, plain.size() * 7) << int(inner) << ": " << payload.size() << " vs " << plain.size();
  }
}

TEST(IndexBitmap, UsesTheReferenceForTheBytesAroundTheVectors) {
  auto [target, vectors] = pruned_layout(50, 200, 3);
  bytes_t ref(target.begin(), target.begin() + 300);  // the metadata before the first vector
  auto payload = body::pack_index_bitmap(vectors, body::transform::prefix, target, ref, 3);
  ASSERT_FALSE(payload.empty());
  auto f = frame_for(target, payload);
  f.reference.push_back({0, ref.size()});
  ASSERT_TRUE(body::check_data_frame(f, ref.size()).ok());
  bytes_t out;
  ASSERT_TRUE(body::decode_payload(f, ref, out).ok());
  EXPECT_EQ(out, target);
}

TEST(IndexBitmap, LeavesVectorsThatAreNotAscendingRunsOrNotSmaller) {
  bytes_t target(100, 0);
  for (std::size_t i = 0; i < 40; ++i) target[10 + i] = static_cast<std::uint8_t>(i % 2 ? 200 : 100);  // rows of 2
  std::vector<body::index_vector> v{{10, 40, 1}};
  EXPECT_TRUE(body::pack_index_bitmap(v, body::transform::raw, target, {}, 3).empty());  // 20 rows x 26 bytes
  v = {{90, 20, 1}};  // runs past the end
  EXPECT_TRUE(body::pack_index_bitmap(v, body::transform::raw, target, {}, 3).empty());
  v = {{10, 40, 1}};
  EXPECT_TRUE(body::pack_index_bitmap(v, body::transform::index_bitmap, target, {}, 3).empty());  // no nesting
}

TEST(IndexBitmap, RefusesEveryCutAndEveryDamagedByteCleanly) {
  auto [target, vectors] = pruned_layout(30, 300, 11);
  auto payload = body::pack_index_bitmap(vectors, body::transform::raw, target, {}, 3);
  ASSERT_FALSE(payload.empty());
  bytes_t out;
  for (std::size_t cut = 0; cut < payload.size(); cut += 1 + cut / 16) {
    bytes_t part(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(body::decode_payload(frame_for(target, part), {}, out).ok()) << cut;
  }
  // Damage anywhere: refused, or (a flipped bitmap bit the zstd frame hides no check for) another
  // output of exactly the frame's length; never a crash (ASan/UBSan builds check the rest).
  for (std::size_t at = 0; at < payload.size(); ++at) {
    bytes_t bad = payload;
    bad[at] ^= 0x5a;
    if (body::decode_payload(frame_for(target, bad), {}, out).ok()) EXPECT_EQ(out.size(), target.size()) << at;
  }
}

TEST(IndexBitmap, RefusesTablesThatDoNotFitTheOutputOrTheBitmaps) {
  // Output: 2 literal bytes, then the u8 indices {1, 3} {0} (two rows of universe 4).
  const bytes_t target{9, 9, 1, 3, 0};
  const bytes_t rewritten{9, 9, 0b1010, 0b0001};
  bytes_t out;
  auto decode = [&](const std::vector<std::array<std::uint64_t, 5>>& table, const bytes_t& rw) {
    auto p = hand_payload(table, rw);
    return body::decode_payload(frame_for(target, p), {}, out);
  };
  ASSERT_TRUE(decode({{2, 1, 3, 4, 2}}, rewritten).ok());
  EXPECT_EQ(out, target);
  EXPECT_FALSE(decode({{4, 1, 3, 4, 2}}, rewritten).ok());                        // vector past the end
  EXPECT_FALSE(decode({{2, 3, 3, 4, 2}}, rewritten).ok());                        // width 3
  EXPECT_FALSE(decode({{2, 1, 0, 4, 2}}, rewritten).ok());                        // no elements
  EXPECT_FALSE(decode({{2, 1, 3, 257, 2}}, rewritten).ok());                      // u8 index 256
  EXPECT_FALSE(decode({{2, 2, 1, 65537, 1}}, bytes_t(8195, 1)).ok());             // universe over 2^16
  EXPECT_FALSE(decode({{2, 1, 3, 4, 4}}, rewritten).ok());                        // more rows than elements
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}}, bytes_t{9, 9, 0b1010, 0b0000}).ok());    // empty row
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}}, bytes_t{9, 9, 0b1010, 0b0011}).ok());    // a fourth index
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}}, bytes_t{9, 9, 0b1000, 0b0001}).ok());    // only two
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}}, bytes_t{9, 9, 0b1010, 0b10001}).ok());   // padding bit
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}}, bytes_t{9, 9, 0b1010}).ok());            // inner frame too short
  ASSERT_TRUE(decode({{2, 1, 2, 4, 1}, {0, 1, 1, 1, 1}}, bytes_t{9, 9, 0b1010, 0b1}).ok());  // {1, 3} and {0} apart
  EXPECT_EQ(out, target);
  EXPECT_FALSE(decode({{2, 1, 3, 4, 2}, {0, 1, 1, 4, 1}}, rewritten).ok());       // second vector past the end

  auto p = hand_payload({{2, 1, 3, 4, 2}}, rewritten);
  for (std::uint8_t inner : {std::uint8_t{2}, std::uint8_t{11}, std::uint8_t{15}, std::uint8_t{200}}) {
    p[0] = inner;  // not an inner transform (15: no nesting)
    EXPECT_FALSE(body::decode_payload(frame_for(target, p), {}, out).ok()) << int(inner);
  }
  p[0] = static_cast<std::uint8_t>(body::transform::raw);
  p[1] = 0;  // no vectors
  EXPECT_FALSE(body::decode_payload(frame_for(target, p), {}, out).ok());
  // A raw inner frame with a reference (raw needs none) breaks the inner transform's rules.
  p = hand_payload({{2, 1, 3, 4, 2}}, rewritten);
  bytes_t ref(4, 0);
  EXPECT_FALSE(body::decode_payload(frame_for(target, p), ref, out).ok());
}

TEST(IndexBitmap, RewrittenBytesAreBoundedBeforeAnythingIsDecoded) {
  // One u16 element per row, 65536-bit rows: 4 Mi rows' worth of bitmaps would be 32 GiB.
  bytes_t p;
  mallorn::core::put_u8(p, static_cast<std::uint8_t>(body::transform::raw));
  mallorn::core::put_varint(p, 1);
  mallorn::core::put_varint(p, 0);
  mallorn::core::put_u8(p, 2);
  mallorn::core::put_varint(p, body::max_chunk / 2);
  mallorn::core::put_varint(p, 65536);
  mallorn::core::put_varint(p, body::max_chunk / 2);
  body::data_frame f;
  f.tf = body::transform::index_bitmap;
  f.out_len = body::max_chunk;
  f.payload = p;
  bytes_t out;
  auto r = body::decode_payload(f, {}, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.err().what()).find("larger than the limit"), std::string::npos) << r.err().what();
}

TEST(IndexBitmap, IsTheLastTransformAReaderKnows) {
  body::data_frame f;
  f.out_len = 10;
  f.tf = body::transform::index_bitmap;
  EXPECT_TRUE(body::check_data_frame(f, 0).ok());
  f.plane_width = 2;
  EXPECT_FALSE(body::check_data_frame(f, 0).ok());  // the rewrite is byte-exact: no planing
  f.plane_width = 1;
  f.tf = static_cast<body::transform>(body::max_transform + 1);
  EXPECT_FALSE(body::check_data_frame(f, 0).ok());
}
