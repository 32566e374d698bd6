// safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data.
#include <nlohmann/json.hpp>

#include "mallorn/formats/model.hpp"

namespace mallorn::formats {
namespace {

core::error bad(const std::string& what) { return core::make_error(core::errc::malformed_model, "safetensors: " + what); }

dtype st_dtype(const std::string& s) {
  if (s == "F32") return dtype::f32;
  if (s == "F16") return dtype::f16;
  if (s == "BF16") return dtype::bf16;
  if (s == "F64") return dtype::f64;
  if (s == "I8") return dtype::i8;
  if (s == "U8") return dtype::u8;
  if (s == "I16") return dtype::i16;
  if (s == "U16") return dtype::u16;
  if (s == "I32") return dtype::i32;
  if (s == "U32") return dtype::u32;
  if (s == "I64") return dtype::i64;
  if (s == "U64") return dtype::u64;
  if (s == "BOOL") return dtype::boolean;
  return dtype::unknown;  // F8_E4M3 etc.: one byte each, no grouping
}

}  // namespace

core::result<model_layout> parse_safetensors(std::span<const std::uint8_t> file) {
  if (file.size() < 8) return bad("file shorter than its length prefix");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file[i];
  if (n > max_header_bytes || n > file.size() - 8) return bad("header length " + std::to_string(n) + " exceeds the file");
  auto header = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(n), nullptr, false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");
  const std::uint64_t base = 8 + n, data_size = file.size() - base;
  model_layout layout;
  layout.format = model_format::safetensors;
  if (header.size() > max_tensors) return bad("too many tensors");
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") continue;
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("data_offsets") ||
        !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 || !v["data_offsets"][0].is_number_unsigned() ||
        !v["data_offsets"][1].is_number_unsigned())
      return bad("tensor '" + name + "' has no valid dtype/data_offsets");
    auto begin = v["data_offsets"][0].get<std::uint64_t>(), end = v["data_offsets"][1].get<std::uint64_t>();
    if (begin > end || end > data_size) return bad("tensor '" + name + "' lies outside the file");
    tensor_info t;
    t.name = name;
    t.type = st_dtype(v["dtype"].get<std::string>());
    std::uint64_t elems = 1;
    if (v.contains("shape") && v["shape"].is_array()) {
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) return bad("tensor '" + name + "' has a bad shape");
        auto dim = d.get<std::uint64_t>();
        t.shape.push_back(static_cast<std::int64_t>(dim));
        elems = dim && elems > UINT64_MAX / dim ? UINT64_MAX : elems * dim;
      }
    }
    unsigned es = core::dtype_size(t.type);
    if (es && elems != UINT64_MAX && elems * es != end - begin)
      return bad("tensor '" + name + "' byte size does not match its shape");
    t.offset = base + begin;
    t.size = end - begin;
    t.plane_width = std::max(1u, es);
    layout.tensors.push_back(std::move(t));
  }
  normalize_layout(layout, file.size());
  return layout;
}

}  // namespace mallorn::formats
