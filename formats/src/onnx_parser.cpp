// ONNX: a bounded protobuf wire walk collecting TensorProto payloads from graph initializers,
// Constant-node attributes and subgraphs (If/Loop bodies), and function bodies.
#include "mallorn/core/bytes.hpp"
#include "mallorn/formats/model.hpp"

namespace mallorn::formats {
namespace {

constexpr int max_depth = 32;

// ONNX TensorProto.DataType -> dtype.
dtype onnx_dtype(std::uint64_t t) {
  switch (t) {
    case 1: return dtype::f32;
    case 2: return dtype::u8;
    case 3: return dtype::i8;
    case 4: return dtype::u16;
    case 5: return dtype::i16;
    case 6: return dtype::i32;
    case 7: return dtype::i64;
    case 9: return dtype::boolean;
    case 10: return dtype::f16;
    case 11: return dtype::f64;
    case 12: return dtype::u32;
    case 13: return dtype::u64;
    case 16: return dtype::bf16;
    default: return dtype::u8;
  }
}

struct field {
  std::uint64_t number;
  int wire;
  std::uint64_t value;                     // varint / fixed
  std::span<const std::uint8_t> bytes;     // length-delimited
  std::uint64_t offset;                    // absolute offset of `bytes`
};

class walker {
 public:
  explicit walker(std::span<const std::uint8_t> file) : file_(file) {}
  std::string error;
  model_layout layout;

  // Calls fn(field) for each field of the message at [begin, begin+len).
  template <class Fn>
  bool each(std::uint64_t begin, std::uint64_t len, Fn&& fn) {
    core::byte_cursor c(file_.subspan(begin, len));
    while (c.remaining() > 0) {
      auto tag = c.varint();
      if (!tag) return fail("truncated tag", begin + c.pos());
      field f{*tag >> 3, static_cast<int>(*tag & 7), 0, {}, 0};
      if (f.number == 0) return fail("field number 0", begin + c.pos());
      std::optional<std::uint64_t> v;
      switch (f.wire) {
        case 0: v = c.varint(); break;
        case 1: v = c.le(8); break;
        case 5: v = c.le(4); break;
        case 2: {
          auto n = c.varint();
          if (!n || *n > c.remaining()) return fail("length past end of message", begin + c.pos());
          f.offset = begin + c.pos();
          f.bytes = *c.take(*n);
          v = *n;
          break;
        }
        default: return fail("unsupported wire type " + std::to_string(f.wire), begin + c.pos());
      }
      if (!v) return fail("truncated field", begin + c.pos());
      f.value = *v;
      if (!fn(f)) return false;
    }
    return true;
  }

  bool model(std::uint64_t begin, std::uint64_t len) {
    return each(begin, len, [&](const field& f) {
      if (f.wire != 2) return true;
      if (f.number == 7) return graph(f.offset, f.bytes.size(), 1);
      if (f.number == 25) return function(f.offset, f.bytes.size(), 1);
      return true;
    });
  }

 private:
  bool fail(const std::string& what, std::uint64_t at) {
    if (error.empty()) error = what + " at offset " + std::to_string(at);
    return false;
  }
  bool deeper(int depth, std::uint64_t at) { return depth <= max_depth || fail("messages nested too deep", at); }

  bool graph(std::uint64_t begin, std::uint64_t len, int depth) {
    if (!deeper(depth, begin)) return false;
    return each(begin, len, [&](const field& f) {
      if (f.wire != 2) return true;
      if (f.number == 1) return node(f.offset, f.bytes.size(), depth + 1);
      if (f.number == 5) return tensor(f.offset, f.bytes.size());
      return true;
    });
  }
  bool function(std::uint64_t begin, std::uint64_t len, int depth) {
    if (!deeper(depth, begin)) return false;
    return each(begin, len, [&](const field& f) {
      return f.wire != 2 || f.number != 7 || node(f.offset, f.bytes.size(), depth + 1);
    });
  }
  bool node(std::uint64_t begin, std::uint64_t len, int depth) {
    if (!deeper(depth, begin)) return false;
    return each(begin, len, [&](const field& f) {
      return f.wire != 2 || f.number != 5 || attribute(f.offset, f.bytes.size(), depth + 1);
    });
  }
  bool attribute(std::uint64_t begin, std::uint64_t len, int depth) {
    if (!deeper(depth, begin)) return false;
    return each(begin, len, [&](const field& f) {
      if (f.wire != 2) return true;
      if (f.number == 5 || f.number == 10) return tensor(f.offset, f.bytes.size());
      if (f.number == 6 || f.number == 11) return graph(f.offset, f.bytes.size(), depth + 1);
      return true;
    });
  }
  bool tensor(std::uint64_t begin, std::uint64_t len) {
    if (layout.tensors.size() >= max_tensors) return fail("too many tensors", begin);
    tensor_info t;
    std::uint64_t data_type = 0;
    std::uint64_t payload_at = 0, payload_len = 0;
    bool packed_double = false;
    bool ok = each(begin, len, [&](const field& f) {
      if (f.number == 1 && f.wire == 0) t.shape.push_back(static_cast<std::int64_t>(f.value));
      if (f.number == 2 && f.wire == 0) data_type = f.value;
      if (f.number == 8 && f.wire == 2) {
        if (f.bytes.size() > max_name_bytes) return fail("tensor name too long", f.offset);
        t.name.assign(f.bytes.begin(), f.bytes.end());
      }
      // raw_data, or packed float_data / double_data (fixed-width, contiguous in the file).
      if (f.wire == 2 && (f.number == 9 || f.number == 4 || f.number == 10)) {
        payload_at = f.offset;
        payload_len = f.bytes.size();
        packed_double = f.number == 10;
        if (f.number == 4) data_type = data_type ? data_type : 1;
      }
      return true;
    });
    if (!ok) return false;
    if (payload_len == 0) return true;
    t.type = packed_double ? dtype::f64 : onnx_dtype(data_type);
    t.offset = payload_at;
    t.size = payload_len;
    t.plane_width = std::max(1u, core::dtype_size(t.type));
    layout.tensors.push_back(std::move(t));
    return true;
  }

  std::span<const std::uint8_t> file_;
};

}  // namespace

core::result<model_layout> parse_onnx(std::span<const std::uint8_t> file) {
  walker w(file);
  w.layout.format = model_format::onnx;
  if (!w.model(0, file.size())) return core::make_error(core::errc::malformed_model, "onnx: " + w.error);
  normalize_layout(w.layout, file.size());
  return std::move(w.layout);
}

}  // namespace mallorn::formats
