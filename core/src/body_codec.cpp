#include <algorithm>
#include <cmath>
#include <cstring>

#include "float_cast.hpp"
#include "mallorn/core/body_format.hpp"
#include "mallorn/core/bytes.hpp"
#include "bzip2_codec.hpp"
#include "index_bitmap.hpp"
#include "lzma_codec.hpp"
#include "plane_coder.hpp"
#include "zstd_codec.hpp"

namespace mallorn::core::body {
namespace {

error bad(const std::string& what) { return make_error(errc::invalid_patch, "body: " + what); }

std::uint64_t load(const std::uint8_t* p, unsigned w) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, w);  // little-endian hosts only (x86-64, ARM64)
  return v;
}
void store(std::uint8_t* p, std::uint64_t v, unsigned w) { std::memcpy(p, &v, w); }

// prediction[i] from the reference for the cast transforms.
void predict_cast(transform tf, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& pred) {
  using namespace detail;
  switch (tf) {
    case transform::cast_f32_f16:
    case transform::cast_f32_bf16: {
      std::size_t n = ref.size() / 4;
      pred.resize(n * 2);
      for (std::size_t i = 0; i < n; ++i) {
        auto x = static_cast<std::uint32_t>(load(ref.data() + 4 * i, 4));
        std::uint16_t h = tf == transform::cast_f32_f16 ? f32_to_f16(x) : f32_to_bf16(x);
        store(pred.data() + 2 * i, h, 2);
      }
      break;
    }
    case transform::cast_f16_f32:
    case transform::cast_bf16_f32: {
      std::size_t n = ref.size() / 2;
      pred.resize(n * 4);
      for (std::size_t i = 0; i < n; ++i) {
        auto h = static_cast<std::uint16_t>(load(ref.data() + 2 * i, 2));
        std::uint32_t x = tf == transform::cast_f16_f32 ? f16_to_f32(h) : bf16_to_f32(h);
        store(pred.data() + 4 * i, x, 4);
      }
      break;
    }
    default: break;
  }
}

bool is_cast(transform tf) {
  return tf == transform::cast_f32_f16 || tf == transform::cast_f32_bf16 || tf == transform::cast_f16_f32 ||
         tf == transform::cast_bf16_f32;
}

bool is_quant(transform tf) { return tf == transform::quant_f32_i8 || tf == transform::quant_f32_u8; }

// Deterministic on every IEEE platform: one correctly rounded fma, then round-half-even.
void predict_quant(transform tf, std::span<const std::uint8_t> ref, std::span<const quant_group> groups,
                   std::vector<std::uint8_t>& pred) {
  std::size_t n = ref.size() / 4, per = n / groups.size();
  bool is_signed = tf == transform::quant_f32_i8;
  float lo = is_signed ? -128.f : 0.f, hi = is_signed ? 127.f : 255.f;
  pred.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& g = groups[i / per];
    float x = detail::bits_f32(static_cast<std::uint32_t>(load(ref.data() + 4 * i, 4)));
    float v = std::nearbyint(std::fma(x, g.a, g.b));
    v = std::isnan(v) ? 0.f : std::clamp(v, lo, hi);
    pred[i] = static_cast<std::uint8_t>(static_cast<int>(v));
  }
}

void put_f32(std::vector<std::uint8_t>& out, float f) { put_le(out, detail::f32_bits(f), 4); }

// Bounds the control section, and with it the number of triples (each is at least 3 bytes).
constexpr std::uint64_t max_approx_control = 8u << 20;

result<void> decode_approx(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out) {
  byte_cursor c(f.payload);
  auto ctrl_len = c.varint();
  auto diff_len = ctrl_len ? c.varint() : std::nullopt;
  if (!diff_len || *ctrl_len > max_approx_control || *diff_len > f.out_len) return bad("bad approx section sizes");
  std::vector<std::uint8_t> sections(*ctrl_len + f.out_len);
  MALLORN_TRY(detail::zstd_decompress(f.payload.subspan(c.pos()), {}, sections));
  byte_cursor ctrl(std::span<const std::uint8_t>(sections).first(*ctrl_len));
  const std::uint8_t* diff = sections.data() + *ctrl_len;
  const std::uint8_t* extra = diff + *diff_len;
  std::uint64_t diff_used = 0, extra_used = 0, written = 0;
  std::int64_t old_pos = 0;
  out.resize(f.out_len);
  while (ctrl.remaining() > 0) {
    auto add = ctrl.varint(), ext = add ? ctrl.varint() : std::nullopt, seek = ext ? ctrl.varint() : std::nullopt;
    if (!seek) return bad("truncated approx control");
    if (*add > *diff_len - diff_used || *ext > f.out_len - *diff_len - extra_used)
      return bad("approx control overruns its sections");
    if (old_pos < 0 || static_cast<std::uint64_t>(old_pos) > ref.size() || *add > ref.size() - old_pos)
      return bad("approx match outside the reference");
    for (std::uint64_t i = 0; i < *add; ++i) out[written + i] = static_cast<std::uint8_t>(diff[diff_used + i] + ref[old_pos + i]);
    written += *add, diff_used += *add, old_pos += static_cast<std::int64_t>(*add);
    std::copy_n(extra + extra_used, *ext, out.begin() + written);
    written += *ext, extra_used += *ext;
    old_pos += unzigzag(*seek);
  }
  if (written != f.out_len) return bad("approx control does not cover the output");
  return {};
}

// The control section of approx and sparse_approx: varint add, varint extra, zigzag seek per step.
std::vector<std::uint8_t> control_section(std::span<const approx_step> steps) {
  std::vector<std::uint8_t> out;
  for (const auto& st : steps) {
    put_varint(out, st.add);
    put_varint(out, st.extra);
    put_varint(out, zigzag(st.seek));
  }
  return out;
}

// sparse_approx coders of the section bytes.
constexpr std::uint8_t sparse_stored = 0, sparse_zstd = 1, sparse_lzma = 2;

// The difference section as zero runs: (varint zeros, varint n, n bytes)* covering `diff_len`.
std::vector<std::uint8_t> sparse_diff(std::span<const std::uint8_t> diff) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < diff.size()) {
    std::size_t z = i;
    while (z < diff.size() && diff[z] == 0) ++z;
    std::size_t e = z;
    // A literal run ends at the first two zeros in a row (one zero costs less inside the run).
    while (e < diff.size() && !(diff[e] == 0 && (e + 1 == diff.size() || diff[e + 1] == 0))) ++e;
    put_varint(out, z - i);
    put_varint(out, e - z);
    out.insert(out.end(), diff.begin() + z, diff.begin() + e);
    i = e;
  }
  return out;
}

result<void> decode_sparse_approx(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out) {
  byte_cursor c(f.payload);
  auto coder = c.u8();
  auto ctrl_len = c.varint();
  auto sparse_len = ctrl_len ? c.varint() : std::nullopt;
  auto extra_len = sparse_len ? c.varint() : std::nullopt;
  // Each zero run pair costs at least two bytes and covers at least one difference byte.
  if (!extra_len || *coder > sparse_lzma || *ctrl_len > max_approx_control || *sparse_len > 2 * f.out_len + 2 ||
      *extra_len > f.out_len)
    return bad("bad sparse approx header");
  std::vector<std::uint8_t> sections(*ctrl_len + *sparse_len + *extra_len);
  auto coded = f.payload.subspan(c.pos());
  if (*coder == sparse_stored) {
    if (coded.size() != sections.size()) return bad("stored sparse approx sections have the wrong length");
    std::copy(coded.begin(), coded.end(), sections.begin());
  } else if (*coder == sparse_zstd) {
    MALLORN_TRY(detail::zstd_decompress(coded, {}, sections, true));
  } else {
    MALLORN_TRY(detail::lzma_decompress(coded, {}, sections));
  }
  byte_cursor ctrl(std::span<const std::uint8_t>(sections).first(*ctrl_len));
  byte_cursor sparse(std::span<const std::uint8_t>(sections).subspan(*ctrl_len, *sparse_len));
  const std::uint8_t* extra = sections.data() + *ctrl_len + *sparse_len;
  std::uint64_t extra_used = 0, written = 0, zeros = 0, literal = 0;
  std::int64_t old_pos = 0;
  out.resize(f.out_len);
  while (ctrl.remaining() > 0) {
    auto add = ctrl.varint(), ext = add ? ctrl.varint() : std::nullopt, seek = ext ? ctrl.varint() : std::nullopt;
    if (!seek) return bad("truncated sparse approx control");
    if (*add > f.out_len - written || *ext > *extra_len - extra_used || *ext > f.out_len - written - *add)
      return bad("sparse approx control overruns its sections");
    if (old_pos < 0 || static_cast<std::uint64_t>(old_pos) > ref.size() || *add > ref.size() - old_pos)
      return bad("sparse approx match outside the reference");
    for (std::uint64_t i = 0; i < *add; ++i) {
      while (zeros == 0 && literal == 0) {
        auto z = sparse.varint(), n = z ? sparse.varint() : std::nullopt;
        if (!n || (*z == 0 && *n == 0) || *n > sparse.remaining()) return bad("bad sparse difference run");
        zeros = *z, literal = *n;
      }
      std::uint8_t d = 0;
      if (zeros) --zeros;
      else d = *sparse.u8(), --literal;
      out[written + i] = static_cast<std::uint8_t>(d + ref[old_pos + i]);
    }
    written += *add, old_pos += static_cast<std::int64_t>(*add);
    std::copy_n(extra + extra_used, *ext, out.begin() + written);
    written += *ext, extra_used += *ext;
    old_pos += unzigzag(*seek);
  }
  if (written != f.out_len || extra_used != *extra_len || zeros || literal || sparse.remaining())
    return bad("sparse approx sections do not cover the output exactly");
  return {};
}

// out = a (+|-|^) b, element-wise. `sub` subtracts for the encoder, adds for the decoder.
void combine(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, transform tf, unsigned ew, bool encode,
             std::vector<std::uint8_t>& out) {
  out.resize(a.size());
  std::size_t n = a.size();
  if (tf != transform::sub_ref || ew <= 1) {
    if (tf == transform::sub_ref) {  // 1-byte elements
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::uint8_t>(encode ? a[i] - b[i] : a[i] + b[i]);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = a[i] ^ b[i];
    return;
  }
  std::size_t whole = n / ew * ew;
  for (std::size_t i = 0; i < whole; i += ew) {
    std::uint64_t x = load(a.data() + i, ew), y = load(b.data() + i, ew);
    store(out.data() + i, encode ? x - y : x + y, ew);
  }
  for (std::size_t i = whole; i < n; ++i) out[i] = a[i] ^ b[i];
}

// The zstd pipelines' residual (transforms 0, 2, 3), planed: what a `bwt` frame's bzip2 stream holds.
// `basis` is the reference or, for the cast transforms, the prediction made from it.
void planed_residual(std::span<const std::uint8_t> target, std::span<const std::uint8_t> basis, transform tf, unsigned pw,
                     unsigned ew, std::vector<std::uint8_t>& planed) {
  if (tf == transform::raw) {
    plane(target, pw, planed);
    return;
  }
  std::vector<std::uint8_t> residual;
  combine(target, basis, tf, ew, true, residual);
  plane(residual, pw, planed);
}

// bzip2 of each applicable residual (raw without a reference; XOR and element difference with one),
// the smallest with its mode byte in front.
std::vector<std::uint8_t> encode_bwt(const data_frame& f, std::span<const std::uint8_t> target,
                                     std::span<const std::uint8_t> ref) {
  std::vector<std::uint8_t> best, planed;
  auto modes = ref.empty() ? std::vector<bwt_mode>{bwt_mode::raw} : std::vector<bwt_mode>{bwt_mode::xor_ref, bwt_mode::sub_ref};
  for (auto mode : modes) {
    transform tf = mode == bwt_mode::raw ? transform::raw : mode == bwt_mode::xor_ref ? transform::xor_ref : transform::sub_ref;
    planed_residual(target, ref, tf, f.plane_width, f.elem_width, planed);
    auto packed = detail::bzip2_compress(planed);
    if (packed.empty() || (!best.empty() && packed.size() + 1 >= best.size())) continue;
    best.assign(1, static_cast<std::uint8_t>(mode));
    best.insert(best.end(), packed.begin(), packed.end());
  }
  return best;
}

result<void> decode_bwt(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out) {
  if (f.payload.empty() || f.payload[0] > static_cast<std::uint8_t>(bwt_mode::sub_ref)) return bad("bad bwt mode");
  auto mode = static_cast<bwt_mode>(f.payload[0]);
  if ((mode == bwt_mode::raw) != ref.empty()) return bad("bwt mode does not fit the reference length");
  std::vector<std::uint8_t> planed(f.out_len), residual;
  MALLORN_TRY(detail::bzip2_decompress(f.payload.subspan(1), planed));
  if (mode == bwt_mode::raw) {
    unplane(planed, f.plane_width, out);
    return {};
  }
  unplane(planed, f.plane_width, residual);
  combine(residual, ref, mode == bwt_mode::xor_ref ? transform::xor_ref : transform::sub_ref, f.elem_width, false, out);
  return {};
}

}  // namespace

std::uint64_t reference_length(const std::vector<segment>& ref) {
  std::uint64_t n = 0;
  for (const auto& s : ref) n += s.length;
  return n;
}

void plane(std::span<const std::uint8_t> in, unsigned w, std::vector<std::uint8_t>& out) {
  out.resize(in.size());
  if (w <= 1) {
    std::copy(in.begin(), in.end(), out.begin());
    return;
  }
  std::size_t n = in.size() / w;
  for (unsigned p = 0; p < w; ++p) {
    std::uint8_t* dst = out.data() + p * n;
    const std::uint8_t* src = in.data() + p;
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i * w];
  }
  std::copy(in.begin() + n * w, in.end(), out.begin() + n * w);
}

void unplane(std::span<const std::uint8_t> in, unsigned w, std::vector<std::uint8_t>& out) {
  out.resize(in.size());
  if (w <= 1) {
    std::copy(in.begin(), in.end(), out.begin());
    return;
  }
  std::size_t n = in.size() / w;
  for (unsigned p = 0; p < w; ++p) {
    const std::uint8_t* src = in.data() + p * n;
    std::uint8_t* dst = out.data() + p;
    for (std::size_t i = 0; i < n; ++i) dst[i * w] = src[i];
  }
  std::copy(in.begin() + n * w, in.end(), out.begin() + n * w);
}

result<void> check_data_frame(const data_frame& f, std::uint64_t source_size) {
  if (f.tf > static_cast<transform>(max_transform)) return bad("unknown transform");
  if (f.ch != channel::gap && f.ch != channel::tensor) return bad("unknown channel");
  if (f.out_len == 0 || f.out_len > max_chunk) return bad("data frame size out of range");
  if (f.plane_width == 0) return bad("plane width 0");
  if (f.elem_width != 1 && f.elem_width != 2 && f.elem_width != 4 && f.elem_width != 8)
    return bad("element width must be 1, 2, 4 or 8");
  if (f.reference.size() > max_segments) return bad("too many reference segments");
  std::uint64_t ref_len = 0;
  for (const auto& s : f.reference) {
    if (s.offset > source_size || s.length > source_size - s.offset) return bad("reference outside the old model");
    ref_len += s.length;
    if (ref_len > max_reference) return bad("reference larger than the limit");
  }
  bool ok = false;  // a transform id without a case below (a gap in the numbering) is refused
  switch (f.tf) {
    case transform::raw: ok = ref_len == 0; break;
    case transform::prefix: ok = f.plane_width == 1; break;
    case transform::xor_ref: case transform::sub_ref: ok = ref_len == f.out_len; break;
    case transform::cast_f32_f16: case transform::cast_f32_bf16:
      ok = f.out_len % 2 == 0 && ref_len == 2 * f.out_len; break;
    case transform::cast_f16_f32: case transform::cast_bf16_f32:
      ok = f.out_len % 4 == 0 && 2 * ref_len == f.out_len; break;
    case transform::quant_f32_i8: case transform::quant_f32_u8:
      ok = ref_len == 4 * f.out_len && f.plane_width == 1; break;
    case transform::approx: ok = f.plane_width == 1; break;
    case transform::lzma: ok = f.plane_width == 1; break;
    case transform::sparse_approx: ok = f.plane_width == 1; break;
    case transform::context_ref: ok = (ref_len == f.out_len || ref_len == 0) && f.plane_width == 1; break;
    case transform::bwt: ok = ref_len == f.out_len || ref_len == 0; break;
    case transform::index_bitmap: ok = f.plane_width == 1; break;  // the inner transform's rules: when decoded
  }
  if (!ok) return bad("reference length does not fit the transform");
  return {};
}

std::vector<std::uint8_t> encode_payload(const data_frame& f, std::span<const std::uint8_t> target,
                                         std::span<const std::uint8_t> ref, int level, std::span<const quant_group> quant) {
  if (f.tf == transform::prefix) return detail::zstd_compress(target, ref, level);
  if (f.tf == transform::context_ref) return detail::context_encode_best(target, ref, f.elem_width);
  if (f.tf == transform::lzma) return detail::lzma_compress(target, ref);
  if (f.tf == transform::bwt) return encode_bwt(f, target, ref);
  if (f.tf == transform::index_bitmap) return {};  // needs the vectors: pack_index_bitmap
  if (is_quant(f.tf)) {
    if (quant.empty() || target.size() % quant.size()) return {};  // no parameters: not encodable
    std::vector<std::uint8_t> pred, residual, out;
    predict_quant(f.tf, ref, quant, pred);
    combine(target, pred, transform::sub_ref, 1, true, residual);
    put_varint(out, quant.size());
    for (const auto& g : quant) put_f32(out, g.a), put_f32(out, g.b);
    auto packed = detail::zstd_compress(residual, {}, level);
    if (packed.empty()) return {};
    out.insert(out.end(), packed.begin(), packed.end());
    return out;
  }
  std::vector<std::uint8_t> planed, pred;
  std::span<const std::uint8_t> basis = ref;
  if (is_cast(f.tf)) {
    predict_cast(f.tf, ref, pred);
    basis = pred;
  }
  planed_residual(target, basis, f.tf, f.plane_width, f.elem_width, planed);
  return detail::zstd_compress(planed, {}, level);
}

result<void> decode_payload(const data_frame& f, std::span<const std::uint8_t> ref, std::vector<std::uint8_t>& out) {
  out.resize(f.out_len);
  if (f.tf == transform::prefix) return detail::zstd_decompress(f.payload, ref, out);
  if (f.tf == transform::approx) return decode_approx(f, ref, out);
  if (f.tf == transform::sparse_approx) return decode_sparse_approx(f, ref, out);
  if (f.tf == transform::context_ref) return detail::context_decode(f.payload, ref, f.elem_width, out);
  if (f.tf == transform::lzma) return detail::lzma_decompress(f.payload, ref, out);
  if (f.tf == transform::bwt) return decode_bwt(f, ref, out);
  if (f.tf == transform::index_bitmap) return detail::decode_index_bitmap(f, ref, out);
  if (is_quant(f.tf)) {
    byte_cursor c(f.payload);
    auto count = c.varint();
    if (!count || *count == 0 || *count > f.out_len || f.out_len % *count) return bad("bad quantization groups");
    std::vector<quant_group> groups(*count);
    for (auto& g : groups) {
      auto a = c.le(4), b = c.le(4);
      if (!b) return bad("truncated quantization parameters");
      g.a = detail::bits_f32(static_cast<std::uint32_t>(*a));
      g.b = detail::bits_f32(static_cast<std::uint32_t>(*b));
    }
    std::vector<std::uint8_t> residual(f.out_len), pred;
    MALLORN_TRY(detail::zstd_decompress(f.payload.subspan(c.pos()), {}, residual));
    predict_quant(f.tf, ref, groups, pred);
    combine(residual, pred, transform::sub_ref, 1, false, out);
    return {};
  }
  std::vector<std::uint8_t> planed(f.out_len), residual;
  MALLORN_TRY(detail::zstd_decompress(f.payload, {}, planed));
  if (f.tf == transform::raw) {
    unplane(planed, f.plane_width, out);
    return {};
  }
  unplane(planed, f.plane_width, residual);
  std::vector<std::uint8_t> pred;
  std::span<const std::uint8_t> basis = ref;
  if (is_cast(f.tf)) {
    predict_cast(f.tf, ref, pred);
    basis = pred;
  }
  combine(residual, basis, f.tf, f.elem_width, false, out);
  return {};
}

std::vector<quant_group> fit_quantization(std::span<const std::uint8_t> ref_f32, std::span<const std::uint8_t> target,
                                          bool is_signed, std::size_t groups) {
  std::size_t n = target.size(), per = n / groups;
  double lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
  std::vector<quant_group> out(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    double sx = 0, sq = 0, sxx = 0, sxq = 0, m = 0;
    for (std::size_t i = g * per; i < (g + 1) * per; ++i) {
      double x = detail::bits_f32(static_cast<std::uint32_t>(load(ref_f32.data() + 4 * i, 4)));
      double q = is_signed ? static_cast<std::int8_t>(target[i]) : target[i];
      if (q <= lo || q >= hi || !std::isfinite(x)) continue;  // saturated values say little about the scale
      sx += x, sq += q, sxx += x * x, sxq += x * q, m += 1;
    }
    if (m == 0) continue;
    double var = sxx - sx * sx / m, cov = sxq - sx * sq / m;
    double a = var > 0 ? cov / var : 0, b = sq / m - a * sx / m;
    out[g] = {static_cast<float>(a), static_cast<float>(b)};
  }
  return out;
}

std::vector<std::uint8_t> pack_approx(std::span<const approx_step> steps, std::span<const std::uint8_t> diff,
                                      std::span<const std::uint8_t> extra, int level) {
  auto sections = control_section(steps);
  std::size_t ctrl_len = sections.size();
  sections.insert(sections.end(), diff.begin(), diff.end());
  sections.insert(sections.end(), extra.begin(), extra.end());
  std::vector<std::uint8_t> out;
  put_varint(out, ctrl_len);
  put_varint(out, diff.size());
  auto packed = detail::zstd_compress(sections, {}, level);
  if (packed.empty()) return {};
  out.insert(out.end(), packed.begin(), packed.end());
  return out;
}

std::vector<std::uint8_t> pack_sparse_approx(std::span<const approx_step> steps, std::span<const std::uint8_t> diff,
                                             std::span<const std::uint8_t> extra, int level) {
  auto sections = control_section(steps);
  std::size_t ctrl_len = sections.size();
  auto sparse = sparse_diff(diff);
  sections.insert(sections.end(), sparse.begin(), sparse.end());
  sections.insert(sections.end(), extra.begin(), extra.end());
  std::vector<std::uint8_t> best;
  auto consider = [&](std::uint8_t coder, std::span<const std::uint8_t> coded) {
    std::vector<std::uint8_t> out;
    put_u8(out, coder);
    put_varint(out, ctrl_len);
    put_varint(out, sparse.size());
    put_varint(out, extra.size());
    if (best.empty() || out.size() + coded.size() < best.size()) {
      out.insert(out.end(), coded.begin(), coded.end());
      best = std::move(out);
    }
  };
  consider(sparse_stored, sections);
  if (auto z = detail::zstd_compress(sections, {}, std::max(level, 19), true); !z.empty()) consider(sparse_zstd, z);
  if (auto l = detail::lzma_compress(sections, {}); !l.empty()) consider(sparse_lzma, l);
  return best;
}

void append_frame(std::vector<std::uint8_t>& body, frame_type type, std::span<const std::uint8_t> payload) {
  put_u8(body, static_cast<std::uint8_t>(type));
  put_varint(body, payload.size());
  body.insert(body.end(), payload.begin(), payload.end());
}

std::vector<std::uint8_t> encode_data_frame_payload(const data_frame& f) {
  std::vector<std::uint8_t> out;
  put_u8(out, static_cast<std::uint8_t>(f.ch));
  put_u8(out, static_cast<std::uint8_t>(f.tf));
  put_u8(out, f.plane_width);
  put_u8(out, f.elem_width);
  put_varint(out, f.out_len);
  put_varint(out, f.reference.size());
  std::uint64_t prev = 0;
  for (const auto& s : f.reference) {
    put_varint(out, zigzag(static_cast<std::int64_t>(s.offset - prev)));
    put_varint(out, s.length);
    prev = s.offset + s.length;
  }
  out.insert(out.end(), f.payload.begin(), f.payload.end());
  return out;
}

std::vector<std::uint8_t> encode_single_frame_body(const data_frame& f) {
  auto full = encode_data_frame_payload(f);
  std::size_t fields = 4;
  while (full[fields] & 0x80) ++fields;  // the output length varint
  std::vector<std::uint8_t> out(full.begin() + 1, full.begin() + 4);
  out.insert(out.end(), full.begin() + static_cast<std::ptrdiff_t>(fields) + 1, full.end());
  return out;
}

std::vector<std::uint8_t> expand_single_frame_body(std::span<const std::uint8_t> body, std::uint64_t target_size) {
  std::vector<std::uint8_t> out;
  out.reserve(body.size() + 11);
  put_u8(out, static_cast<std::uint8_t>(channel::gap));
  out.insert(out.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(3, body.size())));
  put_varint(out, target_size);
  if (body.size() > 3) out.insert(out.end(), body.begin() + 3, body.end());
  return out;
}

result<data_frame> parse_data_frame(std::span<const std::uint8_t> payload) {
  byte_cursor c(payload);
  data_frame f;
  auto ch = c.u8(), tf = c.u8(), pw = c.u8(), ew = c.u8();
  auto out_len = c.varint();
  auto nseg = c.varint();
  if (!nseg) return bad("truncated data frame");
  if (*ch > 1 || *tf > max_transform) return bad("unknown channel or transform");
  if (*nseg > max_segments) return bad("too many reference segments");
  f.ch = static_cast<channel>(*ch);
  f.tf = static_cast<transform>(*tf);
  f.plane_width = *pw;
  f.elem_width = *ew;
  f.out_len = *out_len;
  std::uint64_t prev = 0;
  for (std::uint64_t i = 0; i < *nseg; ++i) {
    auto d = c.varint(), len = c.varint();
    if (!len) return bad("truncated reference list");
    f.reference.push_back({prev + static_cast<std::uint64_t>(unzigzag(*d)), *len});
    prev = f.reference.back().offset + *len;
  }
  f.payload = payload.subspan(c.pos());
  return f;
}

std::vector<std::uint8_t> encode_ops(std::span<const op> ops, std::uint64_t& prev_copy_end, int level) {
  std::vector<std::uint8_t> plain;
  for (const auto& o : ops) {
    put_varint(plain, (o.length << 2) | static_cast<std::uint64_t>(o.kind));
    if (o.kind == op_kind::copy) {
      put_varint(plain, zigzag(static_cast<std::int64_t>(o.src_offset - prev_copy_end)));
      prev_copy_end = o.src_offset + o.length;
    }
  }
  std::vector<std::uint8_t> out;
  put_varint(out, plain.size());
  // A short op list is stored as is: a zstd frame would cost more than it saves.
  auto packed = detail::zstd_compress(plain, {}, std::max(level, 19));
  const auto& chosen = !packed.empty() && packed.size() < plain.size() ? packed : plain;
  out.insert(out.end(), chosen.begin(), chosen.end());
  return out;
}

result<std::vector<op>> decode_ops(std::span<const std::uint8_t> payload, std::uint64_t& prev_copy_end) {
  byte_cursor c(payload);
  auto n = c.varint();
  if (!n || *n == 0 || *n > max_ops_decoded) return bad("bad ops frame size");
  std::vector<std::uint8_t> plain(*n);
  auto stored = payload.subspan(c.pos());
  if (stored.size() == *n) std::copy(stored.begin(), stored.end(), plain.begin());  // stored raw
  else MALLORN_TRY(detail::zstd_decompress(stored, {}, plain));
  std::vector<op> ops;
  byte_cursor oc(plain);
  while (oc.remaining() > 0) {
    auto tag = oc.varint();
    if (!tag) return bad("truncated op");
    op o{static_cast<op_kind>(*tag & 3), *tag >> 2};
    if (*tag & 2 && *tag & 1) return bad("unknown op kind");
    if (o.length == 0) return bad("zero-length op");
    if (o.kind == op_kind::copy) {
      auto d = oc.varint();
      if (!d) return bad("truncated copy op");
      o.src_offset = prev_copy_end + static_cast<std::uint64_t>(unzigzag(*d));
      prev_copy_end = o.src_offset + o.length;
    }
    if (ops.size() >= max_ops_per_frame) return bad("too many ops in one frame");
    ops.push_back(o);
  }
  return ops;
}

}  // namespace mallorn::core::body
