// One-shot zstd with an optional prefix (the reference bytes), with reusable per-thread contexts.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::detail {

std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                                        int level);
// Decompresses exactly out.size() bytes; anything else is invalid_patch.
result<void> zstd_decompress(std::span<const std::uint8_t> src, std::span<const std::uint8_t> prefix,
                             std::span<std::uint8_t> out);

}  // namespace mallorn::core::detail
