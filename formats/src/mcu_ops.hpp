// Internal: the op list of an mcu body (copy / add / literal from the old image, seeks of the
// old cursor), how it is found (bsdiff-style approximate matching) and how blocks encode it.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace mallorn::formats::detail {

enum class mcu_op_kind : std::uint8_t { copy = 0, add = 1, literal = 2, seek = 3, match = 4 };

struct mcu_op {
  mcu_op_kind kind;
  std::uint32_t new_pos = 0;  // copy/add/literal: where its output starts in the new image
  std::uint32_t old_pos = 0;  // copy/add: where its input starts in the old image
  std::uint32_t length = 0;   // copy/add/literal
  std::int64_t delta = 0;     // seek: old cursor change; match: distance back in the output
};

inline constexpr unsigned mcu_len_bits = 15;   // lengths 1..2^14 (blocks of at most 16 KiB)
inline constexpr unsigned mcu_seek_bits = 25;  // |seek| 1..2^25-1
inline constexpr unsigned mcu_dist_bits = 16;  // match distance 1..2^16-1
inline constexpr std::uint32_t mcu_max_image = (1u << 25) - 1;  // so every seek fits

// Ops that rebuild `target` from `old`, every old-image read at most `window` bytes behind the
// furthest one before it; stretches with no counterpart in `old` use matches into the output
// already produced (searching `match_depth` candidates per position; 0: none) before literals.
// `progress(done, total)` is called as the scan advances.
std::vector<mcu_op> plan_mcu_ops(std::span<const std::uint8_t> old, std::span<const std::uint8_t> target,
                                 std::uint32_t window, unsigned match_depth,
                                 const std::function<void(std::uint64_t, std::uint64_t)>& progress);

// The body after its 4-byte header: every block as `varint length, range-coded ops`.
std::vector<std::uint8_t> encode_mcu_blocks(std::span<const mcu_op> ops, std::span<const std::uint8_t> old,
                                            std::span<const std::uint8_t> target, std::uint32_t block_size);

}  // namespace mallorn::formats::detail
