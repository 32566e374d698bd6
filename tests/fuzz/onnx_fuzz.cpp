// libFuzzer target: parse_onnx on arbitrary bytes must not crash or read outside the input,
// and every tensor it reports must lie inside the input.
#include <cstdint>
#include <cstdlib>

#include "mallorn/formats/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto layout = mallorn::formats::parse_onnx({data, size});
  if (layout.ok())
    for (const auto& t : layout->tensors)
      if (t.offset > size || t.size > size - t.offset) std::abort();
  return 0;
}
