// Internal: bsdiff-style approximate matching (Colin Percival's algorithm) of a target against a
// reference, for metadata whose numbers shifted slightly between releases (flatbuffer offsets,
// tables), which exact-match compressors such as zstd handle poorly.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mallorn/core/body_format.hpp"

namespace mallorn::formats::detail {

// The suffix array of one reference, built once and reused for every chunk against it.
class suffix_index {
 public:
  explicit suffix_index(std::span<const std::uint8_t> ref);
  std::span<const std::uint8_t> ref() const { return ref_; }
  // Longest match of `target` among the reference's suffixes: {position, length}.
  std::pair<std::int64_t, std::int64_t> longest_match(std::span<const std::uint8_t> target) const;

 private:
  std::span<const std::uint8_t> ref_;
  std::vector<std::int32_t> sa_;
};

// bsdiff's output for one target: control triples, difference bytes of the approximate matches,
// and the bytes between them.
struct approx_parts {
  std::vector<core::body::approx_step> steps;
  std::vector<std::uint8_t> diff, extra;
};
// Empty when the scan exceeded its work budget (the caller then keeps its zstd encoding).
std::optional<approx_parts> match_approx(const suffix_index& index, std::span<const std::uint8_t> target);

// The approx transform's payload for `target` (see core::body::transform::approx), or empty when
// the scan exceeded its work budget.
std::vector<std::uint8_t> encode_approx(const suffix_index& index, std::span<const std::uint8_t> target, int level);

}  // namespace mallorn::formats::detail
