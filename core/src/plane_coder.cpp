#include "plane_coder.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "mallorn/core/bytes.hpp"
#include "mallorn/core/range_coder.hpp"
#include "bit_model.hpp"
#include "mixing_coder.hpp"

namespace mallorn::core::detail {
namespace {

error bad(const std::string& what) { return make_error(errc::invalid_patch, "context coder: " + what); }

// Context of plane k (0 = most significant byte) of element i. `out` holds the already-coded
// planes (all of planes < k, and plane k for elements < i).
struct context_fn {
  unsigned width;
  unsigned model;
  unsigned contexts(unsigned k) const { return model == 0 && k > 0 ? 512 : 256; }
  unsigned operator()(unsigned k, std::size_t i, const std::uint8_t* out, const std::uint8_t* ref) const {
    std::size_t at = i * width + (width - 1 - k);
    if (model == 1) {  // the new element alone: the higher byte, or for the top byte the previous element's
      if (k > 0) return out[at + 1];
      return i > 0 ? out[at - width] : 0;
    }
    unsigned o = ref[at];
    if (k == 0) return o;
    unsigned hn = out[at + 1], ho = ref[at + 1];
    return hn == ho ? o : 256 + hn;
  }
};

std::size_t planes_of(unsigned width) { return width; }

// --- model 2: numeric residual ------------------------------------------------------------------
// Each element (sign-magnitude, as floats and, after flipping the sign bit, two's-complement
// integers are) is mapped to an unsigned key that orders like its value; the coder codes
// r = key(new) - key(old), i.e. how many representable steps the weight moved: a zero flag, the
// sign, the bit length of |r| (binary tree), the top bits below the leading one, and the rest as
// direct bits. Contexts: the old value's magnitude class (its exponent) and the size of the
// previous element's step, which tracks how far the weights of this region moved.
constexpr unsigned resid_top_bits = 2;  // modelled bits below the leading one

struct resid_layout {
  unsigned width, bits;
  std::uint64_t sign, mask;
  explicit resid_layout(unsigned w)
      : width(w), bits(8 * w), sign(1ull << (8 * w - 1)), mask(w == 8 ? ~0ull : (1ull << (8 * w)) - 1) {}
  // Unsigned key ordering like the value. Floats (w >= 2): sign-magnitude; ints (w == 1): two's complement.
  std::uint64_t key(std::uint64_t x) const {
    if (width == 1) return x ^ sign;
    return x & sign ? (~x & mask) : (x | sign);
  }
  std::uint64_t unkey(std::uint64_t k) const {
    if (width == 1) return k ^ sign;
    return k & sign ? (k & ~sign) : (~k & mask);
  }
  // Magnitude class of the old value: 0..mag_classes-1.
  unsigned mag_class(std::uint64_t x) const {
    if (width == 1) {
      auto v = static_cast<std::int8_t>(x);
      unsigned a = static_cast<unsigned>(v < 0 ? -v : v);
      unsigned l = 0;
      while (a) ++l, a >>= 1;
      return l;  // 0..8
    }
    std::uint64_t mag = x & ~sign;
    if (width == 2) return static_cast<unsigned>(mag >> 9);  // f16: 5 exponent bits + 1; bf16: 6 of 8 exponent bits
    // f32 / f64: the exponent, clamped to the 64 binades below 2 (where weights live)
    unsigned e = static_cast<unsigned>(width == 4 ? mag >> 23 : mag >> 52 >> 3);
    return e < 64 ? 0 : std::min(e - 64, 63u);
  }
  unsigned mag_classes() const { return width == 1 ? 9 : 64; }

  unsigned len_depth() const { return width == 1 ? 4 : width == 2 ? 5 : width == 4 ? 6 : 7; }  // bits <= 2^depth - 1
};

constexpr unsigned neighbour_classes = 25;

struct resid_models {
  explicit resid_models(const resid_layout& L)
      : sign(2 * 2 * neighbour_classes),
        len(std::size_t{L.mag_classes()} * neighbour_classes << L.len_depth()),
        top(std::size_t{L.bits + 1} * (1u << resid_top_bits)) {}
  std::vector<bit_model> sign, len, top;
};

inline std::uint64_t load_elem(const std::uint8_t* p, unsigned w) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, w);
  return v;
}
inline void store_elem(std::uint8_t* p, std::uint64_t v, unsigned w) { std::memcpy(p, &v, w); }

inline unsigned bit_length(std::uint64_t v) { return v ? 64 - static_cast<unsigned>(__builtin_clzll(v)) : 0; }

// The low bits of each step are close to uniform: they bypass the range coder into a plain bit
// stream (LSB-first), which is what keeps decoding fast.
class bit_writer {
 public:
  void put(std::uint64_t v, unsigned n) {  // n <= 57
    acc_ |= v << fill_;
    fill_ += n;
    while (fill_ >= 8) {
      out_.push_back(static_cast<std::uint8_t>(acc_));
      acc_ >>= 8;
      fill_ -= 8;
    }
  }
  std::vector<std::uint8_t> finish() {
    if (fill_) out_.push_back(static_cast<std::uint8_t>(acc_));
    return std::move(out_);
  }

 private:
  std::uint64_t acc_ = 0;
  unsigned fill_ = 0;
  std::vector<std::uint8_t> out_;
};

class bit_reader {
 public:
  explicit bit_reader(std::span<const std::uint8_t> in) : p_(in.data()), end_(in.data() + in.size()) {}
  std::uint64_t get(unsigned n) {  // n <= 56
    while (fill_ < n) {
      if (p_ == end_) {
        overrun_ = true;
        return 0;
      }
      acc_ |= std::uint64_t{*p_++} << fill_;
      fill_ += 8;
    }
    std::uint64_t v = acc_ & ((std::uint64_t{1} << n) - 1);
    acc_ >>= n;
    fill_ -= n;
    return v;
  }
  // Every byte used, the padding bits of the last one zero.
  bool finished_cleanly() const { return !overrun_ && p_ == end_ && fill_ < 8 && acc_ == 0; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::uint64_t acc_ = 0;
  unsigned fill_ = 0;
  bool overrun_ = false;
};

struct enc_adapter {
  static constexpr bool encoding = true;
  range_encoder rc;
  bit_writer raw;
  unsigned bit(bit_model& m, unsigned b) {
    rc.encode((rc.range() >> 16) * m.p, b);
    update(m, b);
    return b;
  }
  std::uint64_t bits(std::uint64_t v, unsigned n) {
    while (n > 48) {  // f64 steps: in two pieces
      raw.put(v >> (n - 48), 48);
      n -= 48;
      v &= (std::uint64_t{1} << n) - 1;
    }
    raw.put(v, n);
    return v;
  }
};

struct dec_adapter {
  static constexpr bool encoding = false;
  range_decoder rc;
  bit_reader raw;
  unsigned bit(bit_model& m, unsigned) {
    unsigned b = rc.decode((rc.range() >> 16) * m.p);
    update(m, b);
    return b;
  }
  std::uint64_t bits(std::uint64_t, unsigned n) {
    std::uint64_t v = 0;
    while (n > 48) {
      v = raw.get(48);
      n -= 48;
    }
    return v << n | raw.get(n);
  }
};

// Codes (encode) or decodes one element's step r (two's complement, L.bits wide): its bit length
// n (0 = no change) through a binary tree, the sign, the resid_top_bits bits below the leading
// one, then the rest raw. Returns the step; `ok` turns false on an impossible symbol.
template <class Coder>
std::uint64_t resid_element(Coder& c, resid_models& m, const resid_layout& L, unsigned mc, unsigned old_neg,
                            unsigned& prev_len, std::uint64_t r_in, bool& ok) {
  unsigned nb = std::min(prev_len, neighbour_classes - 1);
  std::uint64_t mag = 0;
  unsigned neg = 0;
  if constexpr (Coder::encoding) {
    neg = (r_in & L.sign) != 0;
    mag = neg ? ((~r_in + 1) & L.mask) : r_in;
  }
  unsigned n = bit_length(mag), depth = L.len_depth();
  bit_model* lt = m.len.data() + ((std::size_t{mc} * neighbour_classes + nb) << depth);
  unsigned node = 1;
  for (unsigned b = depth; b-- > 0;) node = node * 2 + c.bit(lt[node], (n >> b) & 1);
  n = node - (1u << depth);
  if (n == 0) {
    prev_len = prev_len / 2;
    return 0;
  }
  if (n > L.bits) {
    ok = false;
    return 0;
  }
  neg = c.bit(m.sign[((n > 2) * 2 + old_neg) * neighbour_classes + nb], neg);
  std::uint64_t v = 1;
  unsigned modelled = std::min(n - 1, resid_top_bits);
  bit_model* tm = m.top.data() + std::size_t{n} * (1u << resid_top_bits);
  for (unsigned i = 1; i <= modelled; ++i) {
    unsigned want = static_cast<unsigned>((mag >> (n - 1 - i)) & 1);
    v = v << 1 | c.bit(tm[v & ((1u << resid_top_bits) - 1)], want);
  }
  unsigned rest = n - 1 - modelled;
  if (rest) v = v << rest | c.bits(mag & ((std::uint64_t{1} << rest) - 1), rest);
  prev_len = (prev_len + 2 * n + 1) / 3;  // a running mean: one element's step says little alone
  if (neg && v > L.sign) {  // |r| beyond the representable range
    ok = false;
    return 0;
  }
  return neg ? ((~v + 1) & L.mask) : v;
}

// Payload after the model byte: varint length of the range-coded part, the range-coded part,
// then the raw bits.
std::vector<std::uint8_t> resid_encode(std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                       unsigned w) {
  resid_layout L(w);
  resid_models m(L);
  enc_adapter e;
  std::size_t n = target.size() / w;
  unsigned prev_len = 0;
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t o = load_elem(ref.data() + i * w, w), x = load_elem(target.data() + i * w, w);
    std::uint64_t r = (L.key(x) - L.key(o)) & L.mask;
    resid_element(e, m, L, L.mag_class(o), (o & L.sign) != 0, prev_len, r, ok);
  }
  auto coded = e.rc.finish();
  auto raw = e.raw.finish();
  std::vector<std::uint8_t> out;
  put_varint(out, coded.size());
  out.insert(out.end(), coded.begin(), coded.end());
  out.insert(out.end(), raw.begin(), raw.end());
  return out;
}

bool resid_decode(std::span<const std::uint8_t> payload, std::span<const std::uint8_t> ref, unsigned w,
                  std::span<std::uint8_t> out) {
  byte_cursor c(payload);
  auto coded_len = c.varint();
  if (!coded_len || *coded_len > c.remaining()) return false;
  resid_layout L(w);
  resid_models m(L);
  dec_adapter d{range_decoder(payload.subspan(c.pos(), *coded_len)), bit_reader(payload.subspan(c.pos() + *coded_len))};
  std::size_t n = out.size() / w;
  unsigned prev_len = 0;
  bool ok = true;
  for (std::size_t i = 0; i < n && ok; ++i) {
    std::uint64_t o = load_elem(ref.data() + i * w, w);
    std::uint64_t r = resid_element(d, m, L, L.mag_class(o), (o & L.sign) != 0, prev_len, 0, ok);
    store_elem(out.data() + i * w, L.unkey((L.key(o) + r) & L.mask), w);
  }
  return ok && d.rc.finished_cleanly() && d.raw.finished_cleanly();
}

// Models 0 and 1: one range-coder stream per plane, each plane coded after the one above it.
std::vector<std::vector<std::uint8_t>> plane_encode(std::span<const std::uint8_t> target,
                                                    std::span<const std::uint8_t> ref, unsigned width, unsigned model) {
  std::size_t n = target.size() / width;
  context_fn ctx{width, model};
  std::vector<std::vector<std::uint8_t>> coded(planes_of(width));
  std::vector<bit_model> models;
  for (unsigned k = 0; k < width; ++k) {
    models.assign(std::size_t{ctx.contexts(k)} * 256, bit_model{});
    range_encoder rc;
    std::size_t byte_at = width - 1 - k;
    for (std::size_t i = 0; i < n; ++i) {
      bit_model* m = models.data() + std::size_t{ctx(k, i, target.data(), ref.data())} * 256;
      unsigned v = target[i * width + byte_at], node = 1;
      for (int bit = 7; bit >= 0; --bit) {
        unsigned b = (v >> bit) & 1;
        bit_model& bm = m[node];
        rc.encode((rc.range() >> 16) * bm.p, b);
        update(bm, b);
        node = node * 2 + b;
      }
    }
    coded[k] = rc.finish();
  }
  return coded;
}

}  // namespace

std::vector<std::uint8_t> context_encode(std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                         unsigned width, unsigned model) {
  std::vector<std::uint8_t> zeros;
  if (ref.empty()) {  // no old counterpart: the models see an all-zero reference
    zeros.assign(target.size(), 0);
    ref = zeros;
  }
  std::size_t n = target.size() / width;
  std::vector<std::uint8_t> out;
  put_u8(out, static_cast<std::uint8_t>(model));
  if (model == residual_model) {
    auto coded = resid_encode(target, ref, width);
    out.insert(out.end(), coded.begin(), coded.end());
    out.insert(out.end(), target.begin() + n * width, target.end());
    return out;
  }
  auto coded = model == mixing_model ? mixing_encode(target, ref, width) : plane_encode(target, ref, width, model);
  for (unsigned k = 0; k < width; ++k) {
    bool raw = coded[k].size() >= n;
    if (raw) {
      std::size_t byte_at = width - 1 - k;
      coded[k].resize(n);
      for (std::size_t i = 0; i < n; ++i) coded[k][i] = target[i * width + byte_at];
    }
    put_varint(out, coded[k].size() << 1 | (raw ? 1u : 0u));
  }
  for (const auto& c : coded) out.insert(out.end(), c.begin(), c.end());
  out.insert(out.end(), target.begin() + n * width, target.end());  // trailing bytes, raw
  return out;
}

std::vector<std::uint8_t> context_encode_best(std::span<const std::uint8_t> target, std::span<const std::uint8_t> ref,
                                              unsigned width) {
  std::vector<std::uint8_t> best;
  for (unsigned m = ref.empty() ? 1 : 0; m < context_models; ++m) {
    auto p = context_encode(target, ref, width, m);
    if (best.empty() || p.size() < best.size()) best = std::move(p);
  }
  return best;
}

result<void> context_decode(std::span<const std::uint8_t> payload, std::span<const std::uint8_t> ref, unsigned width,
                            std::span<std::uint8_t> out) {
  if (width != 1 && width != 2 && width != 4 && width != 8) return bad("element width must be 1, 2, 4 or 8");
  std::vector<std::uint8_t> zeros;
  if (ref.empty()) {
    zeros.assign(out.size(), 0);
    ref = zeros;
  }
  if (ref.size() != out.size()) return bad("reference and output lengths differ");
  byte_cursor c(payload);
  auto model = c.u8();
  if (!model || *model >= context_models) return bad("unknown context model");
  std::size_t n = out.size() / width, tail = out.size() - n * width;
  if (*model == residual_model) {
    if (c.remaining() < tail) return bad("truncated payload");
    auto coded = payload.subspan(c.pos(), c.remaining() - tail);
    if (!resid_decode(coded, ref, width, out)) return bad("residual stream damaged");
    std::copy(coded.end(), payload.end(), out.begin() + n * width);
    return {};
  }
  std::array<std::uint64_t, 8> len{};
  std::array<bool, 8> raw{};
  std::uint64_t total = 0;
  for (unsigned k = 0; k < width; ++k) {
    auto tag = c.varint();
    if (!tag) return bad("truncated plane table");
    len[k] = *tag >> 1;
    raw[k] = *tag & 1;
    if (len[k] > payload.size() || (raw[k] && len[k] != n)) return bad("bad plane length");
    total += len[k];
  }
  if (total > c.remaining() || c.remaining() - total != tail) return bad("plane lengths do not match the payload");
  const std::uint8_t* at = payload.data() + c.pos();
  if (*model == mixing_model) {
    std::array<mixing_plane, 8> planes{};
    for (unsigned k = 0; k < width; ++k) {
      planes[k] = {std::span<const std::uint8_t>(at, len[k]), raw[k]};
      at += len[k];
    }
    if (!mixing_decode(std::span<const mixing_plane>(planes.data(), width), ref, width, out))
      return bad("plane stream damaged");
    std::copy(at, at + tail, out.begin() + n * width);
    return {};
  }
  context_fn ctx{width, *model};
  std::vector<bit_model> models;
  for (unsigned k = 0; k < width; ++k) {
    std::size_t byte_at = width - 1 - k;
    std::span<const std::uint8_t> plane(at, len[k]);
    at += len[k];
    if (raw[k]) {
      for (std::size_t i = 0; i < n; ++i) out[i * width + byte_at] = plane[i];
      continue;
    }
    models.assign(std::size_t{ctx.contexts(k)} * 256, bit_model{});
    range_decoder rc(plane);
    for (std::size_t i = 0; i < n; ++i) {
      bit_model* m = models.data() + std::size_t{ctx(k, i, out.data(), ref.data())} * 256;
      unsigned node = 1;
      for (int bit = 0; bit < 8; ++bit) {
        bit_model& bm = m[node];
        unsigned b = rc.decode((rc.range() >> 16) * bm.p);
        update(bm, b);
        node = node * 2 + b;
      }
      out[i * width + byte_at] = static_cast<std::uint8_t>(node - 256);
    }
    if (!rc.finished_cleanly()) return bad("plane stream damaged");
  }
  std::copy(at, at + tail, out.begin() + n * width);
  return {};
}

}  // namespace mallorn::core::detail
