// libFuzzer target for mallorn_lite (firmware/): a valid mcu-profile header for a fixed old image
// (so the source check passes and the fuzzer reaches the body), then arbitrary body bytes, applied
// on RAM-backed flash slots that enforce the HAL contract. Must never crash, hang, or mark a slot
// good; the target hash is random, so every input has to end in a clean error code.
#include <cstdint>
#include <vector>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/formats/mcu_patch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::uint8_t> old_image = [] {
    std::vector<std::uint8_t> v(8192);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(i * 31 + (i >> 7));
    return v;
  }();
  if (size < 2) return 0;
  mallorn::core::patch_header h;
  h.profile = mallorn::core::patch_profile::mcu;
  h.compression = mallorn::core::compression_method::lzss;
  h.source_size = old_image.size();
  h.target_size = 1 + ((data[0] | data[1] << 8) % 20000);  // the first two bytes choose the size
  h.source_sha256 = mallorn::core::sha256_of(old_image);
  h.target_sha256.fill(0xa5);
  h.body_size = size - 2;
  h.body_sha256 = mallorn::core::sha256_of({data + 2, size - 2});
  auto patch = mallorn::core::encode_header(h);
  patch.insert(patch.end(), data + 2, data + size);
  auto r = mallorn::formats::verify_mcu_patch(old_image, patch);
  if (r.ok()) __builtin_trap();  // a random body cannot produce the target hash 0xa5...
  return 0;
}
