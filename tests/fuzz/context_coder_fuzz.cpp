// libFuzzer target: arbitrary bytes as a context_ref, lzma or bwt data-frame payload (the context
// coder's, the LZMA2 and the bzip2 decoder) must never crash, hang, or read/write outside the
// payload, reference and output. The first two input bytes pick the transform, the element width,
// whether there is a reference, and the output length; the reference is a fixed pseudo-random buffer.
#include <cstdint>
#include <vector>

#include "mallorn/core/body_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const std::vector<std::uint8_t> reference = [] {
    std::vector<std::uint8_t> r(1 << 16);
    std::uint32_t x = 12345;
    for (auto& b : r) b = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 16);
    return r;
  }();
  namespace body = mallorn::core::body;
  static const std::uint8_t widths[4] = {1, 2, 4, 8};
  body::data_frame f;
  f.ch = body::channel::tensor;
  // 1 in 4 inputs a bwt frame (with the byte planing its raw mode allows), else lzma or context_ref.
  f.tf = (data[1] & 3) == 3 ? body::transform::bwt : data[1] & 1 ? body::transform::lzma : body::transform::context_ref;
  if (f.tf == body::transform::bwt) f.plane_width = f.elem_width;
  f.elem_width = widths[data[0] & 3];
  bool with_ref = data[0] & 4;
  f.out_len = 1 + (static_cast<std::uint64_t>(data[0] >> 3) << 9) + (data[1] >> 1);  // up to ~16 KiB, any tail
  if (with_ref) f.reference.push_back({0, f.out_len});
  if (!body::check_data_frame(f, reference.size()).ok()) return 0;
  f.payload = std::span<const std::uint8_t>(data + 2, size - 2);
  std::vector<std::uint8_t> out;
  std::span<const std::uint8_t> ref;
  if (with_ref) ref = std::span<const std::uint8_t>(reference).first(f.out_len);
  (void)body::decode_payload(f, ref, out);
  return 0;
}
