// The `context_ref` transform's coder: "compress new given old". Each byte plane of the new tensor
// (most significant first) is coded with an adaptive binary range coder whose contexts come from
// the old tensor's byte at the same position, the new element's already-coded higher byte and the
// neighbouring element (model 3 mixes the old-bytes and neighbour predictions: mixing_coder.hpp).
// Payload layout: docs/patch-format.md (transform 11).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::core::detail {

inline constexpr unsigned context_models = 4;  // model ids 0..3 (see plane_coder.cpp, mixing_coder.hpp)
inline constexpr unsigned residual_model = 2;

// Encodes `target` given `ref` (same length) as elements of `width` bytes (1, 2, 4 or 8) with
// context model `model`. Planes that would not shrink are stored raw.
std::vector<std::uint8_t> context_encode(std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                         unsigned width, unsigned model);
// Encodes with every model and returns the smallest payload.
std::vector<std::uint8_t> context_encode_best(std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                              unsigned width);
// Decodes exactly out.size() bytes (== ref.size()). invalid_patch on any inconsistency: a damaged
// payload gives an error, never a read outside `payload`, `ref` or `out`.
result<void> context_decode(std::span<const std::uint8_t> payload, std::span<const std::uint8_t> ref, unsigned width,
                            std::span<std::uint8_t> out);

}  // namespace mallorn::core::detail
