#include <algorithm>

#include "mallorn/formats/model.hpp"

namespace mallorn::formats {

void normalize_layout(model_layout& layout, std::uint64_t file_size) {
  auto& ts = layout.tensors;
  std::erase_if(ts, [&](const tensor_info& t) { return t.size == 0 || t.offset > file_size || t.size > file_size - t.offset; });
  // Larger regions first at equal offsets, so a region that contains another wins.
  std::stable_sort(ts.begin(), ts.end(), [](const tensor_info& a, const tensor_info& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.size > b.size;
  });
  std::vector<tensor_info> kept;
  kept.reserve(ts.size());
  for (auto& t : ts) {
    if (!kept.empty() && t.offset < kept.back().offset + kept.back().size) continue;  // overlaps
    kept.push_back(std::move(t));
  }
  ts = std::move(kept);
}

core::result<model_layout> parse_model(std::span<const std::uint8_t> file, bool strict) {
  core::result<model_layout> parsed = model_layout{};
  switch (core::sniff_format(file)) {
    case model_format::tflite: parsed = parse_tflite(file); break;
    case model_format::gguf: parsed = parse_gguf(file); break;
    case model_format::onnx: parsed = parse_onnx(file); break;
    case model_format::safetensors: parsed = parse_safetensors(file); break;
    case model_format::raw: return model_layout{};
  }
  if (!parsed && !strict) return model_layout{};
  return parsed;
}

}  // namespace mallorn::formats
