#include "mallorn/core/model_format.hpp"

#include <cstring>

namespace mallorn::core {

std::string_view format_name(model_format f) noexcept {
  switch (f) {
    case model_format::tflite: return "TFLite";
    case model_format::gguf: return "GGUF";
    case model_format::onnx: return "ONNX";
    case model_format::safetensors: return "safetensors";
    case model_format::raw: break;
  }
  return "raw";
}

std::string_view format_id(model_format f) noexcept {
  switch (f) {
    case model_format::tflite: return "tflite";
    case model_format::gguf: return "gguf";
    case model_format::onnx: return "onnx";
    case model_format::safetensors: return "safetensors";
    case model_format::raw: break;
  }
  return "raw";
}

model_format sniff_format(std::span<const std::uint8_t> h) noexcept {
  if (h.size() >= 8 && std::memcmp(h.data() + 4, "TFL3", 4) == 0) return model_format::tflite;
  if (h.size() >= 4 && std::memcmp(h.data(), "GGUF", 4) == 0) return model_format::gguf;
  // safetensors: u64 little-endian JSON length, then '{'.
  if (h.size() >= 9 && h[8] == '{') {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | h[i];
    if (n >= 2 && n < (1ull << 27)) return model_format::safetensors;
  }
  // ONNX ModelProto almost always starts with ir_version (field 1, varint): tag 0x08.
  if (h.size() >= 2 && h[0] == 0x08 && h[1] > 0 && h[1] < 0x20) return model_format::onnx;
  return model_format::raw;
}

std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
    case dtype::f64: return "f64";
    case dtype::i8: return "i8";
    case dtype::u8: return "u8";
    case dtype::i16: return "i16";
    case dtype::u16: return "u16";
    case dtype::i32: return "i32";
    case dtype::u32: return "u32";
    case dtype::i64: return "i64";
    case dtype::u64: return "u64";
    case dtype::boolean: return "bool";
    case dtype::quant_block: return "quant_block";
    case dtype::unknown: break;
  }
  return "unknown";
}

unsigned dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::f64: case dtype::i64: case dtype::u64: return 8;
    case dtype::f32: case dtype::i32: case dtype::u32: return 4;
    case dtype::f16: case dtype::bf16: case dtype::i16: case dtype::u16: return 2;
    case dtype::i8: case dtype::u8: case dtype::boolean: return 1;
    default: return 0;
  }
}

}  // namespace mallorn::core
