// TFLite: a bounded FlatBuffers walk of Model.subgraphs[].tensors[] and Model.buffers[].
// Schema field ids: Model{2 subgraphs, 4 buffers}, SubGraph{0 tensors}, Tensor{0 shape, 1 type,
// 2 buffer, 3 name, 6 sparsity}, Buffer{0 data, 1 offset, 2 size}, SparsityParameters{2 dim_metadata},
// DimensionMetadata{0 format, 4 array_indices_type, 5 array_indices}, Int32Vector / Uint16Vector /
// Uint8Vector{0 values}.
#include <algorithm>
#include <map>

#include "mallorn/formats/model.hpp"

namespace mallorn::formats {
namespace {

// Thrown only inside this file and caught in parse_tflite: the walk is deeply nested and every
// single read is bounds-checked, so unwinding is far clearer than threading results through.
struct malformed {
  std::string what;
  std::uint64_t at;
};

class flatbuffer {
 public:
  explicit flatbuffer(std::span<const std::uint8_t> f) : f_(f) {}

  std::uint64_t u(std::uint64_t pos, int n) const {
    if (pos > f_.size() || static_cast<std::uint64_t>(n) > f_.size() - pos) throw malformed{"read past end", pos};
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | f_[pos + i];
    return v;
  }
  // Position of field `id` of the table at `table`, or 0 when absent.
  std::uint64_t field(std::uint64_t table, int id) const {
    auto soff = static_cast<std::int32_t>(u(table, 4));
    std::int64_t vt = static_cast<std::int64_t>(table) - soff;
    if (vt < 0 || static_cast<std::uint64_t>(vt) + 4 > f_.size()) throw malformed{"vtable outside file", table};
    auto vt_size = u(vt, 2), tbl_size = u(vt + 2, 2);
    if (vt_size < 4 || vt_size % 2) throw malformed{"bad vtable size", static_cast<std::uint64_t>(vt)};
    if (4u + 2u * id >= vt_size) return 0;
    auto off = u(vt + 4 + 2 * id, 2);
    if (off == 0) return 0;
    if (off >= tbl_size) throw malformed{"field outside its table", table};
    return table + off;
  }
  std::uint64_t deref(std::uint64_t pos) const {
    auto target = pos + u(pos, 4);
    if (target >= f_.size()) throw malformed{"offset outside file", pos};
    return target;
  }
  // A vector at `pos`: {first element position, count}, checked to fit `elem` bytes each.
  std::pair<std::uint64_t, std::uint64_t> vec(std::uint64_t pos, std::uint64_t elem) const {
    auto n = u(pos, 4);
    if (n * elem > f_.size() - pos - 4) throw malformed{"vector longer than file", pos};
    return {pos + 4, n};
  }
  std::string str(std::uint64_t pos) const {
    auto [at, n] = vec(pos, 1);
    if (n > max_name_bytes) throw malformed{"name too long", pos};
    return std::string(reinterpret_cast<const char*>(f_.data() + at), n);
  }

 private:
  std::span<const std::uint8_t> f_;
};

dtype tflite_dtype(std::uint64_t t) {
  switch (t) {
    case 0: return dtype::f32;
    case 1: return dtype::f16;
    case 2: return dtype::i32;
    case 3: return dtype::u8;
    case 4: return dtype::i64;
    case 6: return dtype::boolean;
    case 7: return dtype::i16;
    case 9: return dtype::i8;
    case 10: return dtype::f64;
    case 12: return dtype::u64;
    case 15: return dtype::u32;
    case 16: return dtype::u16;
    case 18: return dtype::bf16;
    default: return dtype::u8;  // strings, int4, complex...: bytes without a known grouping
  }
}

// The index vectors of a sparse tensor's CSR dimensions (format 1 = SPARSE_CSR; index vector
// union types 1 Int32Vector, 2 Uint16Vector, 3 Uint8Vector).
void collect_index_vectors(const flatbuffer& fb, std::uint64_t tensor, std::vector<core::body::index_vector>& out) {
  auto sp_f = fb.field(tensor, 6);
  auto dims_f = sp_f ? fb.field(fb.deref(sp_f), 2) : 0;
  if (!dims_f) return;
  auto [d_at, d_n] = fb.vec(fb.deref(dims_f), 4);
  for (std::uint64_t d = 0; d < d_n; ++d) {
    auto dim = fb.deref(d_at + 4 * d);
    auto format_f = fb.field(dim, 0), type_f = fb.field(dim, 4), indices_f = fb.field(dim, 5);
    if (!format_f || !type_f || !indices_f || fb.u(format_f, 1) != 1) continue;
    auto type = fb.u(type_f, 1);
    if (type < 1 || type > 3) continue;
    std::uint8_t width = type == 1 ? 4 : type == 2 ? 2 : 1;
    auto values_f = fb.field(fb.deref(indices_f), 0);
    if (!values_f) continue;
    auto [v_at, v_n] = fb.vec(fb.deref(values_f), width);
    if (v_n > 0) out.push_back({v_at, v_n, width});
  }
}

// Sorted by offset; a vector overlapping the one before it (a crafted file) is dropped.
void normalize_index_vectors(std::vector<core::body::index_vector>& v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  std::uint64_t end = 0;
  std::erase_if(v, [&](const auto& x) {
    if (x.offset < end) return true;
    end = x.offset + x.count * x.width;
    return false;
  });
}

struct tensor_ref {
  std::string name;
  dtype type;
  std::vector<std::int64_t> shape;
};

}  // namespace

core::result<model_layout> parse_tflite(std::span<const std::uint8_t> file) {
  model_layout layout;
  layout.format = model_format::tflite;
  try {
    flatbuffer fb(file);
    if (file.size() < 8) throw malformed{"file too small", 0};
    std::uint64_t root = fb.deref(0);
    std::map<std::uint64_t, tensor_ref> users;  // buffer index -> first tensor using it

    if (auto sg_field = fb.field(root, 2)) {
      auto [sg_at, sg_n] = fb.vec(fb.deref(sg_field), 4);
      for (std::uint64_t s = 0; s < sg_n; ++s) {
        auto sg = fb.deref(sg_at + 4 * s);
        auto tf = fb.field(sg, 0);
        if (!tf) continue;
        auto [t_at, t_n] = fb.vec(fb.deref(tf), 4);
        if (t_n > max_tensors) throw malformed{"too many tensors", t_at};
        for (std::uint64_t i = 0; i < t_n; ++i) {
          auto t = fb.deref(t_at + 4 * i);
          if (layout.index_vectors.size() < max_tensors) collect_index_vectors(fb, t, layout.index_vectors);
          auto buf_f = fb.field(t, 2);
          std::uint64_t buffer = buf_f ? fb.u(buf_f, 4) : 0;
          if (buffer == 0 || users.count(buffer)) continue;
          tensor_ref r;
          auto type_f = fb.field(t, 1);
          r.type = tflite_dtype(type_f ? fb.u(type_f, 1) : 0);
          if (auto name_f = fb.field(t, 3)) r.name = fb.str(fb.deref(name_f));
          if (auto shape_f = fb.field(t, 0)) {
            auto [d_at, d_n] = fb.vec(fb.deref(shape_f), 4);
            for (std::uint64_t d = 0; d < d_n && d < 16; ++d)
              r.shape.push_back(static_cast<std::int32_t>(fb.u(d_at + 4 * d, 4)));
          }
          users.emplace(buffer, std::move(r));
        }
      }
    }

    if (auto buf_field = fb.field(root, 4)) {
      auto [b_at, b_n] = fb.vec(fb.deref(buf_field), 4);
      if (b_n > max_tensors) throw malformed{"too many buffers", b_at};
      for (std::uint64_t i = 0; i < b_n; ++i) {
        auto b = fb.deref(b_at + 4 * i);
        tensor_info info;
        if (auto data_f = fb.field(b, 0)) {
          auto [d_at, d_n] = fb.vec(fb.deref(data_f), 1);
          info.offset = d_at;
          info.size = d_n;
        } else if (auto off_f = fb.field(b, 1)) {
          // Large models keep buffer data after the flatbuffer (offset is absolute; 1 = none).
          auto off = fb.u(off_f, 8);
          auto size_f = fb.field(b, 2);
          auto size = size_f ? fb.u(size_f, 8) : 0;
          if (off > 1) {
            if (off > file.size() || size > file.size() - off) throw malformed{"buffer outside file", off};
            info.offset = off;
            info.size = size;
          }
        }
        if (info.size == 0) continue;
        auto it = users.find(i);
        if (it != users.end()) {
          info.name = it->second.name;
          info.type = it->second.type;
          info.shape = it->second.shape;
        } else {
          info.type = dtype::u8;
        }
        info.plane_width = std::max(1u, core::dtype_size(info.type));
        layout.tensors.push_back(std::move(info));
      }
    }
  } catch (const malformed& m) {
    return core::make_error(core::errc::malformed_model, "tflite: " + m.what + " at offset " + std::to_string(m.at));
  }
  normalize_layout(layout, file.size());
  normalize_index_vectors(layout.index_vectors);
  return layout;
}

}  // namespace mallorn::formats
