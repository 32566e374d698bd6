// Where the tensors are inside a model file. Parsers take the whole file as a byte span, do no
// I/O, bound every offset and count, and reject malformed input with errc::malformed_model.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/body_format.hpp"
#include "mallorn/core/error.hpp"
#include "mallorn/core/model_format.hpp"

namespace mallorn::formats {

using core::dtype;
using core::model_format;

struct tensor_info {
  std::string name;              // empty where the format has no names
  dtype type = dtype::unknown;
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;      // absolute file offset of the tensor's bytes
  std::uint64_t size = 0;        // bytes in the file
  // Width of one element (f32: 4, f16: 2) or of one quantized block (GGUF Q4_0: 18);
  // byte-planing groups byte i of every element/block together. 1 = no grouping.
  std::uint32_t plane_width = 1;
};

struct model_layout {
  model_format format = model_format::raw;
  // Sorted by offset, non-overlapping, each inside the file, size > 0. Tensors that share bytes
  // (TFLite tensors sharing a buffer) appear once.
  std::vector<tensor_info> tensors;
  // Outside the tensors: vectors of indices that ascend within runs (TFLite sparsity's
  // array_indices), offsets absolute in the file; sorted by offset, non-overlapping, each inside
  // the file. The differ may code these as bitmaps (transform index_bitmap).
  std::vector<core::body::index_vector> index_vectors;
};

// Limits every parser enforces.
inline constexpr std::uint64_t max_tensors = 1'000'000;
inline constexpr std::uint64_t max_name_bytes = 64 * 1024;
inline constexpr std::uint64_t max_header_bytes = 512ull << 20;

core::result<model_layout> parse_tflite(std::span<const std::uint8_t> file);
core::result<model_layout> parse_gguf(std::span<const std::uint8_t> file);
core::result<model_layout> parse_onnx(std::span<const std::uint8_t> file);
core::result<model_layout> parse_safetensors(std::span<const std::uint8_t> file);

// Sniffs the format and parses. A file that is not a known format yields a raw layout with no
// tensors. A file that looks like a known format but fails to parse is an error only when
// `strict`; otherwise it falls back to raw (the differ can always fall back to a binary delta).
core::result<model_layout> parse_model(std::span<const std::uint8_t> file, bool strict = false);

// Sorts by offset, drops empty/duplicate/overlapping/out-of-range regions. Parsers call this last.
void normalize_layout(model_layout& layout, std::uint64_t file_size);

}  // namespace mallorn::formats
