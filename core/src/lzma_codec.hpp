// One-shot raw LZMA2 (liblzma) with the reference bytes as a preset dictionary: what the `lzma`
// transform uses where its literal/match modelling beats zstd (novel flatbuffer tables, metadata).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::detail {

// Payload: u8 properties ((pb * 5 + lp) * 9 + lc), then the raw LZMA2 stream; the dictionary size
// is the reference length plus the output length (at least 4 KiB). Tries the default literal
// settings and ones for 4-byte-aligned binary tables; returns the smaller (empty on failure).
std::vector<std::uint8_t> lzma_compress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> dict);
// Decodes exactly out.size() bytes; anything else (including trailing input) is invalid_patch.
result<void> lzma_decompress(std::span<const std::uint8_t> payload, std::span<const std::uint8_t> dict,
                             std::span<std::uint8_t> out);

}  // namespace mallorn::core::detail
