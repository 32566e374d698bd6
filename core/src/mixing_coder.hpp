// Model 3 of the `context_ref` coder: "compress new given old" with logistic mixing. Where model 0
// codes a byte from the old byte alone and model 1 from the neighbouring new element alone, this
// model predicts every bit of the high planes from both (and from their pair) and mixes the three
// predictions in the logistic domain (as lpaq/paq coders do), the mixer's weights learning per
// plane and bit position which source to trust. Layout: docs/patch-format.md (transform 11, model 3).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace mallorn::core::detail {

inline constexpr unsigned mixing_model = 3;

// One plane of a model-3 payload as the decoder sees it: a range-coder stream, or the n bytes raw.
struct mixing_plane {
  std::span<const std::uint8_t> bytes;
  bool raw = false;
};

// The range-coder streams, one per plane (plane 0 = most significant byte), of the
// n = target.size() / width whole elements of `target` given `ref` (same length), coded element
// by element so that every plane's contexts can see the neighbouring element's bytes.
std::vector<std::vector<std::uint8_t>> mixing_encode(std::span<const std::uint8_t> target,
                                                     std::span<const std::uint8_t> ref, unsigned width);
// Decodes the whole elements of `out` (out.size() / width of them; ref.size() == out.size()) from
// one stream or raw plane per byte of the element. False when a stream is damaged (it does not end
// exactly where the elements do); never reads or writes outside the spans.
bool mixing_decode(std::span<const mixing_plane> planes, std::span<const std::uint8_t> ref, unsigned width,
                   std::span<std::uint8_t> out);

}  // namespace mallorn::core::detail
