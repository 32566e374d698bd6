// One-shot zstd with an optional prefix (the reference bytes), with reusable per-thread contexts.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::detail {

// `magicless`: the frame without its 4-byte magic number (ZSTD_f_zstd1_magicless), for payloads
// whose container already says what they are.
std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                                        int level, bool magicless = false);
// Decompresses exactly out.size() bytes; anything else is invalid_patch.
result<void> zstd_decompress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                             std::span<std::uint8_t> out, bool magicless = false);
// Decompresses one frame of at most out.size() bytes; returns how many it produced.
result<std::size_t> zstd_decompress_bounded(std::span<const std::uint8_t> src, std::span<std::uint8_t> out,
                                            bool magicless);

}  // namespace mallorn::core::detail
