// The `index_bitmap` transform's decoder, called from decode_payload (its encoder is
// body::pack_index_bitmap in body_format.hpp).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/body_format.hpp"

namespace mallorn::core::detail {

// Decodes an index_bitmap frame into out (f.out_len bytes). The payload is untrusted: every count
// is bounded before anything is allocated (the rewritten bytes at most max_chunk), and a vector
// table that does not fit the output, an inner frame that does not fit its rules, an empty row, a
// set padding bit or a row list that does not produce exactly the vector's count is invalid_patch.
result<void> decode_index_bitmap(const body::data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out);

}  // namespace mallorn::core::detail
