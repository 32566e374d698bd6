#include "mixing_coder.hpp"

#include <array>

#include "bit_model.hpp"
#include "mallorn/core/range_coder.hpp"

namespace mallorn::core::detail {
namespace {

// --- the logistic domain, in integers (bit-exact on every build) ---------------------------------
// stretch(p) = ln(p / (1 - p)) and squash (its inverse) in units of 1/256 nat, on 16-bit
// probabilities. The tables are computed at compile time with IEEE +, *, / only (exactly rounded
// everywhere), never with a library exp or log, so every build holds the same integers.
constexpr int stretch_limit = 3071;  // 12 nats: p down to 6e-6

constexpr double exp_series(double x) {  // e^x for |x| <= 12: e^(x/64) by Taylor, squared 6 times
  double y = x / 64, term = 1, sum = 1;
  for (int k = 1; k < 20; ++k) {
    term = term * y / k;
    sum += term;
  }
  for (int k = 0; k < 6; ++k) sum *= sum;
  return sum;
}

// squash_of[d + stretch_limit] = 65536 / (1 + e^(-d/256)), clamped to 1..65535.
constexpr std::array<std::uint16_t, 2 * stretch_limit + 1> squash_table() {
  std::array<std::uint16_t, 2 * stretch_limit + 1> t{};
  for (int d = -stretch_limit; d <= stretch_limit; ++d) {
    double p = 65536.0 / (1.0 + exp_series(-d / 256.0));
    int v = static_cast<int>(p + 0.5);
    t[d + stretch_limit] = static_cast<std::uint16_t>(v < 1 ? 1 : v > 65535 ? 65535 : v);
  }
  return t;
}
constexpr auto squash_of = squash_table();

// stretch_of[p] = the smallest d with squash(d) >= p (the inverse, on the integer table).
constexpr std::array<std::int16_t, 65536> stretch_table() {
  std::array<std::int16_t, 65536> t{};
  int d = -stretch_limit;
  for (int p = 0; p < 65536; ++p) {
    while (d < stretch_limit && squash_of[d + stretch_limit] < p) ++d;
    t[p] = static_cast<std::int16_t>(d);
  }
  return t;
}
constexpr auto stretch_of = stretch_table();

inline int squash(int d) { return squash_of[d < -stretch_limit ? 0 : d > stretch_limit ? 2 * stretch_limit : d + stretch_limit]; }
// A bit_model's chance of a 1, stretched.
inline int stretch_model(const bit_model& m) { return stretch_of[65535u - m.p]; }

// A mixed input: a bit_model that keeps its stretched prediction. The mixer reads it on every bit;
// looked up in the 128 KiB stretch table at that moment it sat on the decoder's critical path (a
// cache miss per input per bit), while refreshing it after the update overlaps with decoding.
struct mixed_input {
  bit_model m;
  std::int16_t stretched = static_cast<std::int16_t>(stretch_model(bit_model{}));
};
inline void update(mixed_input& in, unsigned y) {
  update(in.m, y);
  in.stretched = static_cast<std::int16_t>(stretch_model(in.m));
}

// --- the model ------------------------------------------------------------------------------------
// The planes that mix (the sign/exponent byte, and for 4- and 8-byte elements the next one, which
// holds the exponent's last bit); lower planes are mostly mantissa noise, coded from one context
// (and stored raw by the caller when that does not shrink them).
unsigned mixed_planes(unsigned w) { return w >= 4 ? 2 : 1; }

constexpr unsigned inputs = 3;  // the old-bytes prediction, the neighbour prediction, a bias
constexpr int bias_input = 256;
constexpr int initial_weight = 1 << 14;  // 0.25: both sources start half-trusted
constexpr int learning_rate = 6;
constexpr int lr_shift = 12;
constexpr int max_weight = 1 << 22;  // 64.0: keeps the dot product far from overflowing
// A pair context (old class x neighbour class) as a third input was measured and gave nothing
// (mp-pose-detection_0.4-to-0.5: 998,321 bytes with it, 997,679 without) for 4 MiB more tables.

inline int clamp_weight(int w) { return w < -max_weight ? -max_weight : w > max_weight ? max_weight : w; }

// All probabilities of one frame: 4 MiB for 4-byte elements, 6 MiB for 8-byte ones.
struct tables {
  explicit tables(unsigned w)
      : old0(256 * 256), near0(256 * 256), old1(w >= 4 ? 512 * 256 : 0), near1(w >= 4 ? 1024 * 256 : 0),
        low(std::size_t{w - mixed_planes(w)} * 512 * 256) {
    for (auto& set : weights) set = {initial_weight, initial_weight, 0};
  }
  std::vector<mixed_input> old0, near0, old1, near1;
  std::vector<bit_model> low;
  std::array<std::array<int, inputs>, 512> weights{};  // per tree node: plane 0 at 0..255, plane 1 at 256..511
};

// Codes (or decodes) one byte through a 255-node binary tree whose every bit mixes the predictions
// of `a` (old-bytes context) and `b` (neighbour context), with a weight set per tree node.
template <class Coder>
unsigned mixed_byte(Coder& c, mixed_input* a, mixed_input* b, std::array<int, inputs>* ws, unsigned value) {
  unsigned node = 1;
  for (int bit = 7; bit >= 0; --bit) {
    auto& w = ws[node];
    int s0 = a[node].stretched, s1 = b[node].stretched;
    std::int64_t dot = std::int64_t{w[0]} * s0 + std::int64_t{w[1]} * s1 + std::int64_t{w[2]} * bias_input;
    int p1 = squash(static_cast<int>(dot >> 16));  // 1..65535
    unsigned y = c.code(static_cast<std::uint32_t>(65536 - p1), (value >> bit) & 1);
    int err = (((static_cast<int>(y) << 16) - p1) >> 4) * learning_rate;
    w[0] = clamp_weight(w[0] + ((s0 * err) >> lr_shift));
    w[1] = clamp_weight(w[1] + ((s1 * err) >> lr_shift));
    w[2] = clamp_weight(w[2] + ((bias_input * err) >> lr_shift));
    update(a[node], y);
    update(b[node], y);
    node = node * 2 + y;
  }
  return node - 256;
}

template <class Coder>
unsigned plain_byte(Coder& c, bit_model* m, unsigned value) {
  unsigned node = 1;
  for (int bit = 7; bit >= 0; --bit) {
    bit_model& bm = m[node];
    unsigned y = c.code(bm.p, (value >> bit) & 1);
    update(bm, y);
    node = node * 2 + y;
  }
  return node - 256;
}

// Runs the model over n elements. `known` holds the new bytes coded so far (the target when
// encoding; `dst` when decoding, which receives each byte as it is decoded).
template <class Coder>
void run(Coder& c, std::size_t n, unsigned w, const std::uint8_t* ref, const std::uint8_t* known, std::uint8_t* dst) {
  tables t(w);
  unsigned mixed = mixed_planes(w);
  unsigned prev0 = 0, prev1 = 0;  // the previous element's new bytes of planes 0 and 1
  for (std::size_t i = 0; i < n; ++i) {
    for (unsigned k = 0; k < w; ++k) {
      std::size_t at = i * w + (w - 1 - k);
      unsigned ob = ref[at], value = dst ? 0 : known[at], v;
      c.plane = k;
      if (c.is_raw(k)) {
        v = c.raw_byte(k, i);
      } else if (k == 0) {
        v = mixed_byte(c, &t.old0[ob * 256], &t.near0[prev0 * 256], &t.weights[0], value);
      } else {
        unsigned hn = dst ? dst[at + 1] : known[at + 1], ho = ref[at + 1];
        unsigned ctx = hn == ho ? ob : 256 + hn;
        if (k < mixed)
          v = mixed_byte(c, &t.old1[ctx * 256], &t.near1[(hn * 4 + (prev1 >> 6)) * 256], &t.weights[256], value);
        else
          v = plain_byte(c, &t.low[(std::size_t{k - mixed} * 512 + ctx) * 256], value);
      }
      if (dst) dst[at] = static_cast<std::uint8_t>(v);
      if (k == 0) prev0 = v;
      if (k == 1) prev1 = v;
    }
  }
}

// One range coder per plane, so that each plane can fall back to raw bytes on its own.
struct encoder {
  std::vector<range_encoder> rc;
  unsigned plane = 0;
  unsigned code(std::uint32_t p0, unsigned b) {
    rc[plane].encode((rc[plane].range() >> 16) * p0, b);
    return b;
  }
  bool is_raw(unsigned) const { return false; }
  unsigned raw_byte(unsigned, std::size_t) const { return 0; }
};

struct decoder {
  std::vector<range_decoder> rc;
  std::span<const mixing_plane> planes;
  unsigned plane = 0;
  unsigned code(std::uint32_t p0, unsigned) { return rc[plane].decode((rc[plane].range() >> 16) * p0); }
  bool is_raw(unsigned k) const { return planes[k].raw; }
  unsigned raw_byte(unsigned k, std::size_t i) const { return planes[k].bytes[i]; }
};

}  // namespace

std::vector<std::vector<std::uint8_t>> mixing_encode(std::span<const std::uint8_t> target,
                                                     std::span<const std::uint8_t> ref, unsigned width) {
  encoder e{std::vector<range_encoder>(width)};
  run(e, target.size() / width, width, ref.data(), target.data(), nullptr);
  std::vector<std::vector<std::uint8_t>> out;
  for (auto& rc : e.rc) out.push_back(rc.finish());
  return out;
}

bool mixing_decode(std::span<const mixing_plane> planes, std::span<const std::uint8_t> ref, unsigned width,
                   std::span<std::uint8_t> out) {
  std::size_t n = out.size() / width;
  if (ref.size() != out.size() || planes.size() != width) return false;
  decoder d{{}, planes};
  for (const auto& p : planes) {
    if (p.raw && p.bytes.size() != n) return false;
    d.rc.emplace_back(p.raw ? std::span<const std::uint8_t>{} : p.bytes);
  }
  run(d, n, width, ref.data(), out.data(), out.data());
  for (unsigned k = 0; k < width; ++k)
    if (!planes[k].raw && !d.rc[k].finished_cleanly()) return false;
  return true;
}

}  // namespace mallorn::core::detail
