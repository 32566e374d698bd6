// libFuzzer target: arbitrary bytes as a patch against a fixed small old model must never crash,
// hang or write past the declared target size.
#include <cstdint>
#include <vector>

#include "mallorn/core/patch_applier.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::uint8_t> old_model(4096, 0x42);
  mallorn::core::memory_source src(old_model);
  mallorn::core::memory_sink out;
  mallorn::core::apply_options opts;
  opts.verify_source = false;  // let the fuzzer reach the body without forging a SHA-256
  mallorn::core::patch_applier applier(src, out, opts);
  std::size_t half = size / 2;
  if (applier.feed({data, half}).ok() && applier.feed({data + half, size - half}).ok()) (void)applier.finish();
  return 0;
}
