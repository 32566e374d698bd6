// GGUF v2/v3: header, key/value metadata, tensor infos, aligned data section.
#include "mallorn/core/bytes.hpp"
#include "mallorn/formats/model.hpp"

namespace mallorn::formats {
namespace {

struct ggml_type_info {
  std::uint32_t block_elems;  // elements per block
  std::uint32_t block_bytes;  // bytes per block
  dtype type;
};

// ggml's type_traits (blck_size, type_size); 0 = unknown/removed type.
ggml_type_info ggml_type(std::uint32_t t) {
  switch (t) {
    case 0: return {1, 4, dtype::f32};
    case 1: return {1, 2, dtype::f16};
    case 2: return {32, 18, dtype::quant_block};   // Q4_0
    case 3: return {32, 20, dtype::quant_block};   // Q4_1
    case 6: return {32, 22, dtype::quant_block};   // Q5_0
    case 7: return {32, 24, dtype::quant_block};   // Q5_1
    case 8: return {32, 34, dtype::quant_block};   // Q8_0
    case 9: return {32, 36, dtype::quant_block};   // Q8_1
    case 10: return {256, 84, dtype::quant_block};  // Q2_K
    case 11: return {256, 110, dtype::quant_block}; // Q3_K
    case 12: return {256, 144, dtype::quant_block}; // Q4_K
    case 13: return {256, 176, dtype::quant_block}; // Q5_K
    case 14: return {256, 210, dtype::quant_block}; // Q6_K
    case 15: return {256, 292, dtype::quant_block}; // Q8_K
    case 16: return {256, 66, dtype::quant_block};  // IQ2_XXS
    case 17: return {256, 74, dtype::quant_block};  // IQ2_XS
    case 18: return {256, 98, dtype::quant_block};  // IQ3_XXS
    case 19: return {256, 50, dtype::quant_block};  // IQ1_S
    case 20: return {32, 18, dtype::quant_block};   // IQ4_NL
    case 21: return {256, 110, dtype::quant_block}; // IQ3_S
    case 22: return {256, 82, dtype::quant_block};  // IQ2_S
    case 23: return {256, 136, dtype::quant_block}; // IQ4_XS
    case 24: return {1, 1, dtype::i8};
    case 25: return {1, 2, dtype::i16};
    case 26: return {1, 4, dtype::i32};
    case 27: return {1, 8, dtype::i64};
    case 28: return {1, 8, dtype::f64};
    case 29: return {256, 56, dtype::quant_block};  // IQ1_M
    case 30: return {1, 2, dtype::bf16};
    case 34: return {256, 54, dtype::quant_block};  // TQ1_0
    case 35: return {256, 66, dtype::quant_block};  // TQ2_0
    default: return {0, 0, dtype::unknown};
  }
}

class gguf_reader {
 public:
  explicit gguf_reader(std::span<const std::uint8_t> f) : c_(f) {}
  std::string error;
  std::size_t pos() const { return c_.pos(); }

  bool fail(const std::string& what) {
    if (error.empty()) error = what + " at offset " + std::to_string(c_.pos());
    return false;
  }
  bool u(int n, std::uint64_t& v) {
    auto r = c_.le(n);
    if (!r) return fail("truncated");
    v = *r;
    return true;
  }
  bool str(std::string* out) {
    std::uint64_t n = 0;
    if (!u(8, n)) return false;
    if (n > c_.remaining()) return fail("string longer than the file");
    auto s = c_.take(n);
    if (out) {
      if (n > max_name_bytes) return fail("name too long");
      out->assign(s->begin(), s->end());
    }
    return true;
  }
  // Skips one value of `type`; reads general.alignment into *alignment when asked.
  bool value(std::uint64_t type, int depth, std::uint64_t* as_uint) {
    static constexpr int fixed[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > 12) return fail("unknown metadata type " + std::to_string(type));
    if (type == 8) return str(nullptr);
    if (type == 9) {
      if (depth > 8) return fail("arrays nested too deep");
      std::uint64_t elem = 0, count = 0;
      if (!u(4, elem) || !u(8, count)) return false;
      if (elem > 12) return fail("unknown array element type");
      std::uint64_t min_size = elem == 8 ? 8 : elem == 9 ? 12 : static_cast<std::uint64_t>(fixed[elem]);
      if (count > c_.remaining() / min_size) return fail("array longer than the file");
      for (std::uint64_t i = 0; i < count; ++i)
        if (!value(elem, depth + 1, nullptr)) return false;
      return true;
    }
    std::uint64_t v = 0;
    if (!u(fixed[type], v)) return false;
    if (as_uint) *as_uint = v;
    return true;
  }

 private:
  core::byte_cursor c_;
};

core::error bad(const std::string& what) { return core::make_error(core::errc::malformed_model, "gguf: " + what); }

}  // namespace

core::result<model_layout> parse_gguf(std::span<const std::uint8_t> file) {
  gguf_reader r(file);
  std::uint64_t magic = 0, version = 0, n_tensors = 0, n_kv = 0;
  if (!r.u(4, magic) || magic != 0x46554747) return bad("bad magic");
  if (!r.u(4, version)) return bad(r.error);
  if (version != 2 && version != 3) return bad("version " + std::to_string(version) + " is not supported (2 or 3)");
  if (!r.u(8, n_tensors) || !r.u(8, n_kv)) return bad(r.error);
  if (n_tensors > max_tensors || n_kv > max_tensors) return bad("too many tensors or keys");
  std::uint64_t alignment = 32;
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    std::uint64_t type = 0, v = 0;
    if (!r.str(&key) || !r.u(4, type)) return bad(r.error);
    bool is_alignment = key == "general.alignment";
    if (!r.value(type, 0, is_alignment ? &v : nullptr)) return bad(r.error);
    if (is_alignment) {
      if (type != 4 || v == 0 || (v & (v - 1)) || v > (1u << 20)) return bad("general.alignment must be a power of two");
      alignment = v;
    }
  }
  struct info {
    tensor_info t;
    std::uint64_t rel;
  };
  std::vector<info> infos;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    info in;
    std::uint64_t n_dims = 0, type = 0;
    if (!r.str(&in.t.name) || !r.u(4, n_dims)) return bad(r.error);
    if (n_dims == 0 || n_dims > 8) return bad("tensor '" + in.t.name + "' has " + std::to_string(n_dims) + " dims");
    std::uint64_t elems = 1;
    for (std::uint64_t d = 0; d < n_dims; ++d) {
      std::uint64_t dim = 0;
      if (!r.u(8, dim)) return bad(r.error);
      if (dim == 0 || dim > (1ull << 40) || elems > (1ull << 62) / dim) return bad("tensor '" + in.t.name + "' is too large");
      elems *= dim;
      in.t.shape.push_back(static_cast<std::int64_t>(dim));
    }
    if (!r.u(4, type) || !r.u(8, in.rel)) return bad(r.error);
    auto ti = ggml_type(static_cast<std::uint32_t>(type));
    if (!ti.block_elems) return bad("tensor '" + in.t.name + "' has unknown ggml type " + std::to_string(type));
    if (in.t.shape[0] % ti.block_elems) return bad("tensor '" + in.t.name + "' row is not a whole number of blocks");
    in.t.type = ti.type;
    in.t.size = elems / ti.block_elems * ti.block_bytes;
    in.t.plane_width = ti.block_bytes;
    infos.push_back(std::move(in));
  }
  std::uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  model_layout layout;
  layout.format = model_format::gguf;
  for (auto& in : infos) {
    if (in.rel % alignment) return bad("tensor '" + in.t.name + "' is not aligned");
    if (data_start > file.size() || in.rel > file.size() - data_start || in.t.size > file.size() - data_start - in.rel)
      return bad("tensor '" + in.t.name + "' lies outside the file");
    in.t.offset = data_start + in.rel;
    layout.tensors.push_back(std::move(in.t));
  }
  normalize_layout(layout, file.size());
  return layout;
}

}  // namespace mallorn::formats
