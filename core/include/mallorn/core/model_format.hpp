// Model file formats and tensor element types, shared by the container (which records them)
// and the format parsers (which produce them).
#pragma once
#include <cstdint>
#include <span>
#include <string_view>

namespace mallorn::core {

// Stored in the patch header: values are part of the container format.
enum class model_format : std::uint8_t { raw = 0, tflite = 1, gguf = 2, onnx = 3, safetensors = 4 };

// "TFLite", "GGUF", "ONNX", "safetensors", "raw" (the seed's PatchInfo.format spelling).
std::string_view format_name(model_format f) noexcept;
// Lower-case short name for fingerprints and CLI output: "tflite", "gguf", ...
std::string_view format_id(model_format f) noexcept;

// Guesses the format from magic bytes alone (cheap: looks at the first bytes only).
// Anything unrecognised is raw.
model_format sniff_format(std::span<const std::uint8_t> head) noexcept;

// Element type of a tensor's bytes. Quantized block types (GGUF Q4_0, Q8_0, K-quants, ...) are
// `quant_block`: their plane width is the block size in bytes.
enum class dtype : std::uint8_t {
  unknown = 0,
  f32, f16, bf16, f64,
  i8, u8, i16, u16, i32, u32, i64, u64,
  boolean,
  quant_block,
};

std::string_view dtype_name(dtype t) noexcept;
// Bytes per element for plain types; 0 for unknown and quant_block.
unsigned dtype_size(dtype t) noexcept;

}  // namespace mallorn::core
