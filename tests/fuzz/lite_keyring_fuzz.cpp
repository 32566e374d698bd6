// libFuzzer target for mallorn_lite's binary keyring parser (firmware/src/ml_keyring.c): any
// bytes, checked against an empty and a filled RAM-backed keyring store. Must never crash, read
// out of bounds or accept (nothing the fuzzer makes carries a valid root signature), and must
// agree with the C++ decoder on what is structurally well-formed.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mallorn/core/keyring.hpp"
#include "mallorn_lite_keyring.h"

namespace {

std::vector<std::uint8_t> flash(2 * 4096, 0xFF);
int rd(const mallorn_lite_area*, std::uint32_t off, void* dst, std::uint32_t len) {
  std::memcpy(dst, flash.data() + off, len);
  return 0;
}
int wr(const mallorn_lite_area*, std::uint32_t, const void*, std::uint32_t) { return -1; }  // checks never write
int er(const mallorn_lite_area*, std::uint32_t, std::uint32_t) { return -1; }
const mallorn_lite_flash_ops ops{rd, wr, er};
const mallorn_lite_area store{&ops, nullptr, 2 * 4096, 4096, 8};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::uint8_t root[32] = {1, 2, 3};
  if (size > MALLORN_LITE_KEYRING_MAX + 64) return 0;
  const int r = mallorn_lite_keyring_check(&store, data, static_cast<std::uint32_t>(size), root, 1);
  if (r == 0) std::abort();
  const bool cpp_ok = mallorn::core::decode_keyring_binary({data, size}).ok();
  // Sizes the store cannot hold are refused before parsing (E_SPACE), whatever they contain.
  if (size > 0 && size + 48 <= 4096 && (r == -MALLORN_LITE_E_KEYRING) == cpp_ok) std::abort();
  return 0;
}
