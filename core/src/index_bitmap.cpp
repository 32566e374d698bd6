// index_bitmap: sorted index vectors as bitmaps. A pruned weight matrix stored as compressed sparse
// rows lists, per row, the ascending columns of its kept weights; which columns survive pruning is
// close to random, so no coder finds much in the index integers (MediaPipe's pose detector 0.5:
// 1.0 MB of them, 368 KB after bzip2 -9, 457 KB after xz -9, 515 KB after zstd -19; delta-coded
// within rows still 311 KB at best), while as rows of bits they cost about their entropy (278 KB
// after zstd -19, against 274 KB for independent bits at each row's density).
#include "index_bitmap.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#include "mallorn/core/bytes.hpp"

namespace mallorn::core::body {
namespace {

error bad(const std::string& what) { return make_error(errc::invalid_patch, "body: index_bitmap: " + what); }

constexpr std::uint64_t max_universe = 1u << 16;  // bits per row
constexpr std::uint64_t max_vectors = max_segments;

bool is_inner(std::uint8_t tf) {
  auto t = static_cast<transform>(tf);
  return t == transform::raw || t == transform::prefix || t == transform::lzma || t == transform::bwt;
}

std::uint64_t row_bytes(std::uint64_t universe) { return (universe + 7) / 8; }

std::uint64_t load(const std::uint8_t* p, unsigned w) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, w);  // little-endian hosts only (x86-64, ARM64)
  return v;
}

// One vector as the frame describes it: `rows` bitmaps of `universe` bits stand for `count` elements.
struct vector_plan {
  std::uint64_t gap = 0;  // output bytes between the previous vector (or the start) and this one
  index_vector v;
  std::uint64_t universe = 0, rows = 0;
};

// Rows are the maximal strictly ascending runs (a CSR row, or adjacent rows that happen to ascend
// across their boundary; either way the decoder rebuilds the same elements). Empty when the vector
// is not worth rewriting: not ascending in runs that a bitmap holds, or no smaller as bitmaps.
std::optional<vector_plan> plan_vector(const index_vector& v, std::span<const std::uint8_t> target) {
  if (v.count == 0 || (v.width != 1 && v.width != 2 && v.width != 4)) return std::nullopt;
  if (v.offset > target.size() || v.count > (target.size() - v.offset) / v.width) return std::nullopt;
  vector_plan p{0, v, 0, 1};
  std::uint64_t prev = 0;
  for (std::uint64_t i = 0; i < v.count; ++i) {
    auto x = load(target.data() + v.offset + i * v.width, v.width);
    if (x >= max_universe) return std::nullopt;
    if (i > 0 && x <= prev) ++p.rows;
    p.universe = std::max(p.universe, x + 1);
    prev = x;
  }
  if (p.rows * row_bytes(p.universe) >= v.count * v.width) return std::nullopt;
  return p;
}

}  // namespace

std::vector<std::uint8_t> pack_index_bitmap(std::span<const index_vector> vectors, transform inner,
                                            std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                            int level) {
  if (!is_inner(static_cast<std::uint8_t>(inner))) return {};
  std::vector<vector_plan> plans;
  std::uint64_t end = 0;
  for (const auto& v : vectors) {
    if (v.offset < end || plans.size() == max_vectors) continue;
    auto p = plan_vector(v, target);
    if (!p) continue;
    p->gap = v.offset - end;
    end = v.offset + v.count * v.width;
    plans.push_back(*p);
  }
  if (plans.empty()) return {};
  // The rewritten bytes: everything outside the vectors in order, then every vector's bitmaps, so
  // the inner coder sees the metadata it may find in the reference apart from the near-random bits.
  std::vector<std::uint8_t> rewritten, bitmaps;
  std::uint64_t at = 0;
  for (const auto& p : plans) {
    rewritten.insert(rewritten.end(), target.begin() + at, target.begin() + p.v.offset);
    at = p.v.offset + p.v.count * p.v.width;
    std::vector<std::uint8_t> row(row_bytes(p.universe));
    std::uint64_t prev = 0;
    for (std::uint64_t i = 0; i < p.v.count; ++i) {
      auto x = load(target.data() + p.v.offset + i * p.v.width, p.v.width);
      if (i > 0 && x <= prev) {
        bitmaps.insert(bitmaps.end(), row.begin(), row.end());
        std::fill(row.begin(), row.end(), 0);
      }
      row[x >> 3] |= static_cast<std::uint8_t>(1u << (x & 7));
      prev = x;
    }
    bitmaps.insert(bitmaps.end(), row.begin(), row.end());
  }
  rewritten.insert(rewritten.end(), target.begin() + at, target.end());
  rewritten.insert(rewritten.end(), bitmaps.begin(), bitmaps.end());
  if (rewritten.size() > max_chunk) return {};

  data_frame inner_frame;
  inner_frame.tf = inner;
  inner_frame.out_len = rewritten.size();
  auto coded = encode_payload(inner_frame, rewritten, ref, level);
  if (coded.empty()) return {};
  std::vector<std::uint8_t> out;
  put_u8(out, static_cast<std::uint8_t>(inner));
  put_varint(out, plans.size());
  for (const auto& p : plans) {
    put_varint(out, p.gap);
    put_u8(out, p.v.width);
    put_varint(out, p.v.count);
    put_varint(out, p.universe);
    put_varint(out, p.rows);
  }
  out.insert(out.end(), coded.begin(), coded.end());
  return out;
}

}  // namespace mallorn::core::body

namespace mallorn::core::detail {
using namespace body;  // the frame types and this file's helpers above

result<void> decode_index_bitmap(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out) {
  byte_cursor c(f.payload);
  auto inner = c.u8();
  auto n = inner ? c.varint() : std::nullopt;
  if (!n) return bad("truncated header");
  if (!is_inner(*inner)) return bad("unknown inner transform");
  if (*n == 0 || *n > max_vectors) return bad("vector count out of range");
  std::vector<vector_plan> plans(*n);
  std::uint64_t end = 0, literal_len = f.out_len, rewritten_len = f.out_len;  // minus vectors (plus bitmaps)
  for (auto& p : plans) {
    auto gap = c.varint();
    auto width = gap ? c.u8() : std::nullopt;
    auto count = width ? c.varint() : std::nullopt;
    auto universe = count ? c.varint() : std::nullopt;
    auto rows = universe ? c.varint() : std::nullopt;
    if (!rows) return bad("truncated vector table");
    if (*width != 1 && *width != 2 && *width != 4) return bad("element width must be 1, 2 or 4");
    if (*gap > f.out_len - end) return bad("vector outside the output");
    p.gap = *gap;
    p.v = {end + *gap, *count, *width};
    if (*count == 0 || *count > (f.out_len - p.v.offset) / *width) return bad("vector outside the output");
    if (*universe == 0 || *universe > max_universe || (*width == 1 && *universe > 256)) return bad("universe out of range");
    if (*rows == 0 || *rows > *count) return bad("row count out of range");
    p.universe = *universe;
    p.rows = *rows;
    end = p.v.offset + *count * *width;
    // Bounded: rows <= count <= 4 Mi and a row is at most 8 KiB, so no step overflows.
    literal_len -= *count * *width;
    rewritten_len = rewritten_len - *count * *width + *rows * row_bytes(*universe);
    if (rewritten_len > max_chunk) return bad("rewritten bytes larger than the limit");
  }

  data_frame inner_frame;
  inner_frame.ch = f.ch;
  inner_frame.tf = static_cast<transform>(*inner);
  inner_frame.out_len = rewritten_len;
  if (!ref.empty()) inner_frame.reference.push_back({0, ref.size()});
  inner_frame.payload = f.payload.subspan(c.pos());
  MALLORN_TRY(check_data_frame(inner_frame, ref.size()));
  std::vector<std::uint8_t> rewritten;
  MALLORN_TRY(decode_payload(inner_frame, ref, rewritten));
  if (rewritten.size() != rewritten_len) return bad("inner frame has the wrong length");

  out.resize(f.out_len);
  // Read positions in `rewritten`: its literal part, its bitmaps; and the write position in `out`.
  std::uint64_t lit = 0, bits = literal_len, written = 0;
  for (const auto& p : plans) {
    std::copy_n(rewritten.begin() + lit, p.gap, out.begin() + written);
    lit += p.gap, written += p.gap;
    std::uint64_t produced = 0, rb = row_bytes(p.universe);
    for (std::uint64_t r = 0; r < p.rows; ++r, bits += rb) {
      const std::uint8_t* row = rewritten.data() + bits;
      if (p.universe % 8 && row[rb - 1] >> (p.universe % 8)) return bad("padding bit set");
      std::uint64_t in_row = 0;
      for (std::uint64_t byte = 0; byte < rb; ++byte) {
        for (unsigned b = row[byte]; b; b &= b - 1) {
          if (produced == p.v.count) return bad("more indices than the vector holds");
          std::uint64_t x = byte * 8 + static_cast<unsigned>(std::countr_zero(b));
          std::memcpy(out.data() + written, &x, p.v.width);  // little-endian hosts only
          written += p.v.width, ++produced, ++in_row;
        }
      }
      if (in_row == 0) return bad("empty row");
    }
    if (produced != p.v.count) return bad("fewer indices than the vector holds");
  }
  std::copy(rewritten.begin() + lit, rewritten.begin() + literal_len, out.begin() + written);
  return {};
}

}  // namespace mallorn::core::detail
