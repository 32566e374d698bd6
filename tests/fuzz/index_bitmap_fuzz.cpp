// libFuzzer target: arbitrary bytes as an index_bitmap data-frame payload (the vector table, the
// inner frame it wraps and the bitmaps it decodes to) must never crash, hang, allocate beyond the
// frame limits, or read/write outside the payload, reference and output. The first two input
// bytes pick whether there is a reference and the output length; the reference is a fixed
// pseudo-random buffer.
#include <cstdint>
#include <vector>

#include "mallorn/core/body_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const std::vector<std::uint8_t> reference = [] {
    std::vector<std::uint8_t> r(4096);
    std::uint32_t x = 54321;
    for (auto& b : r) b = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 16);
    return r;
  }();
  namespace body = mallorn::core::body;
  body::data_frame f;
  f.tf = body::transform::index_bitmap;
  bool with_ref = data[0] & 1;
  f.out_len = 1 + (static_cast<std::uint64_t>(data[0] >> 1) << 8) + data[1];  // up to 32 KiB
  if (with_ref) f.reference.push_back({0, reference.size()});
  if (!body::check_data_frame(f, reference.size()).ok()) return 0;
  f.payload = std::span<const std::uint8_t>(data + 2, size - 2);
  std::vector<std::uint8_t> out;
  std::span<const std::uint8_t> ref;
  if (with_ref) ref = reference;
  if (body::decode_payload(f, ref, out).ok() && out.size() != f.out_len) __builtin_trap();
  return 0;
}
