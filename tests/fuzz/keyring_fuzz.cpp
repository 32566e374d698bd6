// libFuzzer target for the keyring parsers (core/src/keyring_binary.cpp, keyring_json.cpp): any
// input must decode cleanly or fail with an error, and whatever decodes must re-encode to the
// same signed bytes through both forms (no field the signature does not cover).
#include <cstdint>
#include <cstdlib>

#include "mallorn/core/keyring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto k = mallorn::core::decode_keyring({data, size});
  if (!k.ok()) return 0;
  auto bin = mallorn::core::encode_keyring_binary(*k);
  if (!bin.ok()) std::abort();
  auto again = mallorn::core::decode_keyring_json(mallorn::core::encode_keyring_json(*k));
  if (!again.ok() || *mallorn::core::encode_keyring_binary(*again) != *bin) std::abort();
  auto back = mallorn::core::decode_keyring_binary(*bin);
  if (!back.ok()) std::abort();
  (void)mallorn::core::count_valid_signatures(*k, k->root_keys);
  return 0;
}
