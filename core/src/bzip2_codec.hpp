// One-shot bzip2 (libbz2: Burrows-Wheeler transform + move-to-front + Huffman) for the `bwt`
// transform: on novel structured bytes (new flatbuffer tables, f16/int8 weights with no useful old
// counterpart) its block sorting finds the context regularities LZ77 parsers miss — what makes
// bsdiff beat zstd and LZMA on some retrained MediaPipe pairs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::detail {

// bzip2 stream of `src` at block size 900 kB (empty on failure).
std::vector<std::uint8_t> bzip2_compress(std::span<const std::uint8_t> src);
// Decodes exactly out.size() bytes; a stream that ends early, runs long or leaves trailing input is
// invalid_patch.
result<void> bzip2_decompress(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out);

}  // namespace mallorn::core::detail
