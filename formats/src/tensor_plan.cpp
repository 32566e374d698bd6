#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "diff_plan.hpp"

namespace mallorn::formats::detail {
namespace {

namespace body = core::body;
using core::dtype;
using core::tensor_encoding;

// Old tensors of one shape compared with a renamed new tensor to find its counterpart (bounds the
// pairing's cost on models with hundreds of same-shape layers: the first ones in file order).
constexpr std::size_t max_similarity_candidates = 64;

// Below this a tensor is cheaper inside the generic delta than as its own frame.
constexpr std::uint64_t min_tensor_frame = 256;

// Tensors are read in pieces of this size, each released once read: a 1 GiB tensor must not
// become 1 GiB of resident pages just to be hashed or compared.
constexpr std::size_t read_piece = 16u << 20;

std::uint64_t content_key(bytes b, const page_releaser& release) {
  std::uint64_t k = b.size() * 0x9e3779b97f4a7c15ull;
  for (std::size_t at = 0; at < b.size(); at += read_piece) {
    auto p = b.subspan(at, std::min(read_piece, b.size() - at));
    k = (k ^ std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(p.data()), p.size()))) *
        0x100000001b3ull;
    release(p);
  }
  return k;
}

bool same_bytes(bytes a, bytes b, const page_releaser& release) {
  if (a.size() != b.size()) return false;
  for (std::size_t at = 0; at < a.size(); at += read_piece) {
    std::size_t n = std::min(read_piece, a.size() - at);
    bool same = std::memcmp(a.data() + at, b.data() + at, n) == 0;
    release(a.subspan(at, n));
    release(b.subspan(at, n));
    if (!same) return false;
  }
  return true;
}

struct candidate {
  body::transform tf;
  std::uint8_t plane_width;
  std::uint8_t elem_width;
  tensor_encoding encoding;
  std::uint64_t quant_row = 0;  // re-quantization: elements per parameter group (0 = whole chunk)
  bool with_ref = true;         // false: context_ref coding the new bytes alone
};

std::uint8_t elem_width_of(const tensor_info& t) {
  unsigned w = core::dtype_size(t.type);
  return static_cast<std::uint8_t>(w == 2 || w == 4 || w == 8 ? w : 1);
}
std::uint8_t plane_width_of(const tensor_info& t) {
  return static_cast<std::uint8_t>(std::clamp<std::uint32_t>(t.plane_width, 1, 255));
}

// The cast transform that predicts `to` from `from`, if the weights kept their element count.
std::optional<body::transform> cast_between(const tensor_info& from, const tensor_info& to) {
  if (from.type == dtype::f32 && to.type == dtype::f16 && from.size == 2 * to.size) return body::transform::cast_f32_f16;
  if (from.type == dtype::f32 && to.type == dtype::bf16 && from.size == 2 * to.size) return body::transform::cast_f32_bf16;
  if (from.type == dtype::f16 && to.type == dtype::f32 && 2 * from.size == to.size) return body::transform::cast_f16_f32;
  if (from.type == dtype::bf16 && to.type == dtype::f32 && 2 * from.size == to.size) return body::transform::cast_bf16_f32;
  return std::nullopt;
}

// bzip2 (block sorting) costs ~1 s per 4 MiB chunk and mode: only at the server's high levels.
constexpr int bwt_min_level = 19;

// Candidate encodings for a target tensor given its matched source tensor (if any).
std::vector<candidate> candidates_for(const tensor_info& t, const tensor_info* s, bool neural, int level) {
  std::vector<candidate> out;
  std::uint8_t pw = plane_width_of(t), ew = elem_width_of(t);
  auto both = [&](body::transform tf, tensor_encoding e, std::uint8_t w) {
    out.push_back({tf, 1, w, e});
    if (neural && pw > 1) out.push_back({tf, pw, w, e});
  };
  if (s && s->size == t.size) {
    both(body::transform::xor_ref, tensor_encoding::xor_delta, 1);
    if (neural) out.push_back({body::transform::context_ref, 1, ew, tensor_encoding::xor_delta});
    if (level >= bwt_min_level) both(body::transform::bwt, tensor_encoding::xor_delta, ew);
    if (ew > 1 || t.type == dtype::i8 || t.type == dtype::u8) both(body::transform::sub_ref, tensor_encoding::sub_delta, ew);
    out.push_back({body::transform::prefix, 1, 1, tensor_encoding::ref_delta});
  } else if (s) {
    if (auto tf = cast_between(*s, t)) both(*tf, tensor_encoding::cast_delta, 1);
    if (s->type == dtype::f32 && (t.type == dtype::i8 || t.type == dtype::u8) && s->size == 4 * t.size) {
      auto tf = t.type == dtype::i8 ? body::transform::quant_f32_i8 : body::transform::quant_f32_u8;
      out.push_back({tf, 1, 1, tensor_encoding::cast_delta, 0});  // per-tensor scale
      // Per-channel scales along the first axis (TFLite/ONNX weight layout).
      if (t.shape.size() > 1 && t.shape[0] > 1 && t.size % static_cast<std::uint64_t>(t.shape[0]) == 0)
        out.push_back({tf, 1, 1, tensor_encoding::cast_delta, t.size / static_cast<std::uint64_t>(t.shape[0])});
    }
    if (s->size <= body::max_reference) out.push_back({body::transform::prefix, 1, 1, tensor_encoding::ref_delta});
  }
  both(body::transform::raw, tensor_encoding::literal, 1);
  if (neural) out.push_back({body::transform::context_ref, 1, ew, tensor_encoding::literal, 0, false});
  if (level >= bwt_min_level) {  // bzip2 of the new bytes alone (planed or not)
    out.push_back({body::transform::bwt, 1, 1, tensor_encoding::literal, 0, false});
    if (neural && pw > 1) out.push_back({body::transform::bwt, pw, 1, tensor_encoding::literal, 0, false});
  }
  // LZMA2 with the old tensor as dictionary: slow to encode, so only at the server's high levels.
  if (level >= 19) out.push_back({body::transform::lzma, 1, 1, s ? tensor_encoding::ref_delta : tensor_encoding::literal,
                                  0, s && s->size <= body::max_reference});
  return out;
}

// Reference bytes (in the old file) for one chunk of the target tensor under transform tf.
body::segment reference_for(body::transform tf, const tensor_info& s, std::uint64_t chunk_off, std::uint64_t chunk_len) {
  switch (tf) {
    case body::transform::raw:
    case body::transform::approx:
    case body::transform::sparse_approx:
    case body::transform::index_bitmap: return {0, 0};  // used for the gap stream only
    case body::transform::xor_ref:
    case body::transform::context_ref:
    case body::transform::bwt:
    case body::transform::sub_ref: return {s.offset + chunk_off, chunk_len};
    case body::transform::cast_f32_f16:
    case body::transform::cast_f32_bf16: return {s.offset + chunk_off * 2, chunk_len * 2};
    case body::transform::cast_f16_f32:
    case body::transform::cast_bf16_f32: return {s.offset + chunk_off / 2, chunk_len / 2};
    case body::transform::quant_f32_i8:
    case body::transform::quant_f32_u8: return {s.offset + chunk_off * 4, chunk_len * 4};
    case body::transform::lzma:
    case body::transform::prefix: {
      // Whole old tensor when it fits, else the window around the same relative position.
      std::uint64_t len = std::min<std::uint64_t>(s.size, body::max_reference);
      std::uint64_t start = std::min<std::uint64_t>(chunk_off > len / 2 ? chunk_off - len / 2 : 0, s.size - len);
      return {s.offset + start, len};
    }
  }
  return {0, 0};
}

encoded_frame encode_frame(const candidate& c, bytes target, body::segment ref, bytes old_file, int level,
                           std::uint64_t chunk_off) {
  encoded_frame f;
  f.meta.ch = body::channel::tensor;
  f.meta.tf = c.tf;
  f.meta.plane_width = c.plane_width;
  f.meta.elem_width = c.elem_width;
  f.meta.out_len = target.size();
  if (ref.length) f.meta.reference.push_back(ref);
  auto ref_bytes = old_file.subspan(ref.offset, ref.length);
  std::vector<body::quant_group> quant;
  if (c.tf == body::transform::quant_f32_i8 || c.tf == body::transform::quant_f32_u8) {
    std::uint64_t row = c.quant_row ? c.quant_row : target.size();
    if (chunk_off % row || target.size() % row) return f;  // groups must not straddle chunks
    quant = body::fit_quantization(ref_bytes, target, c.tf == body::transform::quant_f32_i8, target.size() / row);
  }
  f.payload = body::encode_payload(f.meta, target, ref_bytes, level, quant);
  f.meta.payload = f.payload;
  return f;
}

class tensor_planner {
 public:
  tensor_planner(bytes old_file, const model_layout& ol, bytes new_file, const model_layout& nl, const diff_options& o,
                 const page_releaser& release)
      : old_(old_file), new_(new_file), ol_(ol), nl_(nl), opts_(o), release_(release) {
    for (std::size_t i = 0; i < ol.tensors.size(); ++i) {
      const auto& s = ol.tensors[i];
      if (!s.name.empty()) by_name_.emplace(s.name, i);
      by_content_.emplace(content_key(old_.subspan(s.offset, s.size), release_), i);
    }
    exact_.reserve(nl.tensors.size());
    for (const auto& t : nl.tensors) exact_.push_back(find_exact(new_.subspan(t.offset, t.size)));
    match_ = match_tensors();
  }

  plan run() {
    std::uint64_t cursor = 0;
    std::unordered_map<std::string, bool> seen_names;
    for (std::size_t i = 0; i < nl_.tensors.size(); ++i) {
      const auto& t = nl_.tensors[i];
      if (!t.name.empty()) seen_names[t.name] = true;
      add_gap(cursor, t.offset);
      plan_tensor(i, t);
      cursor = t.offset + t.size;
      if (opts_.progress) opts_.progress(cursor, new_.size());
    }
    add_gap(cursor, new_.size());
    for (const auto& s : ol_.tensors)
      if (!s.name.empty() && !seen_names.count(s.name)) ++p_.removed;
    p_.jobs = std::move(jobs_);
    return std::move(p_);
  }

 private:
  void add_gap(std::uint64_t from, std::uint64_t to) {
    if (to <= from) return;
    if (!p_.ops.empty() && p_.ops.back().kind == body::op_kind::gap) {
      p_.ops.back().length += to - from;
      return;
    }
    p_.ops.push_back({body::op_kind::gap, from, to - from});
  }

  void add_copy(std::uint64_t target_off, std::uint64_t source_off, std::uint64_t len) {
    auto& ops = p_.ops;
    if (!ops.empty() && ops.back().kind == body::op_kind::copy &&
        ops.back().source_offset + ops.back().length == source_off) {
      ops.back().length += len;
      return;
    }
    ops.push_back({body::op_kind::copy, target_off, len, source_off});
  }

  const tensor_info* find_exact(bytes tb) {
    auto [lo, hi] = by_content_.equal_range(content_key(tb, release_));
    for (auto it = lo; it != hi; ++it) {
      const auto& s = ol_.tensors[it->second];
      if (same_bytes(old_.subspan(s.offset, s.size), tb, release_)) return &s;
    }
    return nullptr;
  }

  // Pairs each new tensor with its old counterpart. Old tensors that reappear unchanged are taken
  // by those copies first. Then by name; then, for tensors whose names changed between releases
  // (converters renumber or prefix them), the unclaimed old tensor of the same dtype and shape whose
  // sampled elements are closest (a model can hold several tensors of one shape, and the first in
  // file order is often the wrong one: silero-vad's re-export swapped its 16 kHz and 8 kHz
  // branches); in nameless formats, the tensor at the same position.
  std::vector<const tensor_info*> match_tensors() const {
    std::vector<const tensor_info*> match(nl_.tensors.size(), nullptr);
    std::vector<bool> claimed(ol_.tensors.size(), false);
    for (const auto* s : exact_)
      if (s) claimed[static_cast<std::size_t>(s - ol_.tensors.data())] = true;
    for (std::size_t i = 0; i < nl_.tensors.size(); ++i) {
      const auto& t = nl_.tensors[i];
      if (t.name.empty() || exact_[i]) continue;
      if (auto it = by_name_.find(t.name); it != by_name_.end()) {
        match[i] = &ol_.tensors[it->second];
        claimed[it->second] = true;
      }
    }
    std::map<std::tuple<dtype, std::uint64_t, std::vector<std::int64_t>>, std::vector<std::size_t>> unclaimed;
    for (std::size_t j = 0; j < ol_.tensors.size(); ++j)
      if (!claimed[j]) unclaimed[{ol_.tensors[j].type, ol_.tensors[j].size, ol_.tensors[j].shape}].push_back(j);
    for (std::size_t i = 0; i < nl_.tensors.size(); ++i) {
      const auto& t = nl_.tensors[i];
      if (match[i] || exact_[i]) continue;
      if (t.name.empty() && i < ol_.tensors.size() &&
          (ol_.tensors[i].size == t.size || cast_between(ol_.tensors[i], t))) {
        match[i] = &ol_.tensors[i];
        continue;
      }
      auto it = unclaimed.find({t.type, t.size, t.shape});
      if (it == unclaimed.end() || it->second.empty()) continue;
      auto& pool = it->second;
      std::size_t best = 0;
      if (pool.size() > 1) {
        std::uint64_t best_score = 0;
        for (std::size_t k = 0; k < pool.size() && k < max_similarity_candidates; ++k) {
          std::uint64_t score = similarity(ol_.tensors[pool[k]], t);
          if (score > best_score) best_score = score, best = k;  // ties: the first in file order
        }
      }
      match[i] = &ol_.tensors[pool[best]];
      pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(best));
    }
    return match;
  }

  // How alike two tensors of one shape are: the leading bits that agree between old and new
  // elements (as integers, most significant byte first), summed over a few runs of elements spread
  // across the tensor. A retrained tensor shares sign, exponent and high mantissa with its old self
  // far more often than with another tensor of the same shape. Reads at most ~64 KiB of each.
  std::uint64_t similarity(const tensor_info& s, const tensor_info& t) const {
    const std::size_t w = elem_width_of(t);
    const std::size_t elems = t.size / w;
    if (!elems) return 0;
    constexpr std::size_t runs = 16, run_elems = 512;
    std::uint64_t score = 0;
    for (std::size_t r = 0; r < runs; ++r) {
      std::size_t first = elems > run_elems ? (elems - run_elems) * r / (runs - 1) : 0;
      std::size_t count = std::min(run_elems, elems - first);
      const std::uint8_t* a = old_.data() + s.offset + first * w;
      const std::uint8_t* b = new_.data() + t.offset + first * w;
      for (std::size_t e = 0; e < count; ++e, a += w, b += w) {
        unsigned agree = 0;
        for (std::size_t k = w; k-- > 0;) {  // little-endian: the last byte is the most significant
          unsigned x = a[k] ^ b[k];
          if (x) {
            agree += static_cast<unsigned>(std::countl_zero(static_cast<std::uint8_t>(x)));
            break;
          }
          agree += 8;
        }
        score += agree;
      }
      if (elems <= run_elems) break;
    }
    return score;
  }

  void plan_tensor(std::size_t index, const tensor_info& t) {
    if (const auto* s = exact_[index]) {
      ++p_.unchanged;
      add_copy(t.offset, s->offset, t.size);
      return;
    }
    const tensor_info* s = match_[index];
    if (s) ++p_.modified;
    else ++p_.added;
    if (t.size < min_tensor_frame || (!s && t.size < 64 * 1024)) {
      // Small or unknown tensors ride in the generic delta, which can still find them moved.
      // Counted, but not listed: a stat entry would cost more header bytes than it tells.
      add_gap(t.offset, t.offset + t.size);
      return;
    }
    // Chunks are only planned here; encode_tensor_jobs encodes them, in parallel.
    std::uint64_t align = 8ull * plane_width_of(t);
    std::uint64_t chunk = body::max_chunk / align * align;
    for (std::uint64_t off = 0; off < t.size; off += chunk) {
      std::uint64_t len = std::min(chunk, t.size - off);
      p_.ops.push_back({body::op_kind::tensor, t.offset + off, len, 0, p_.tensor_frames.size()});
      jobs_.push_back({index, match_[index], off, len, p_.tensor_frames.size(), p_.stats.size()});
      p_.tensor_frames.emplace_back();
    }
    p_.stats.push_back({t.name, tensor_encoding::literal, t.size, 0});
  }

  bytes old_, new_;
  const model_layout& ol_;
  const model_layout& nl_;
  const diff_options& opts_;
  const page_releaser& release_;
  std::vector<tensor_job> jobs_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::unordered_multimap<std::uint64_t, std::size_t> by_content_;
  std::vector<const tensor_info*> exact_;  // per new tensor: an old tensor with the same bytes
  std::vector<const tensor_info*> match_;
  plan p_;
};

}  // namespace

plan build_tensor_plan(bytes old_file, const model_layout& old_layout, bytes new_file, const model_layout& new_layout,
                       const diff_options& opts, const page_releaser& release) {
  return tensor_planner(old_file, old_layout, new_file, new_layout, opts, release).run();
}

void encode_tensor_job(plan& p, std::size_t job, bytes old_file, const model_layout& new_layout, bytes new_file,
                       const diff_options& opts, const page_releaser& release) {
  const auto& j = p.jobs[job];
  const auto& t = new_layout.tensors[j.tensor];
  const tensor_info* s = j.source;
  bytes piece = new_file.subspan(t.offset + j.offset, j.length);
  auto cands = candidates_for(t, s, opts.neural, opts.level);
  // zstd candidates are compared at a fast level and only the winner is redone at the asked level;
  // context-coded, LZMA and bzip2 candidates have no level, so the best of them competes as it is.
  encoded_frame best, best_ctx;
  std::optional<candidate> best_c, best_ctx_c;
  int trial_level = std::min(opts.level, 3);
  auto ref_of = [&](const candidate& c) {
    return s && c.with_ref ? reference_for(c.tf, *s, j.offset, j.length) : body::segment{};
  };
  for (const auto& c : cands) {
    auto f = encode_frame(c, piece, ref_of(c), old_file, trial_level, j.offset);
    if (f.payload.empty()) continue;
    const bool ctx = c.tf == body::transform::context_ref || c.tf == body::transform::lzma || c.tf == body::transform::bwt;
    auto& slot = ctx ? best_ctx : best;
    auto& slot_c = ctx ? best_ctx_c : best_c;
    if (!slot_c || f.payload.size() < slot.payload.size()) {
      slot = std::move(f);
      slot_c = c;
    }
  }
  if (best_c && opts.level > trial_level)
    best = encode_frame(*best_c, piece, ref_of(*best_c), old_file, opts.level, j.offset);
  if (best_ctx_c && (!best_c || best_ctx.payload.size() < best.payload.size())) {
    best = std::move(best_ctx);
    best_c = best_ctx_c;
  }
  best.payload.shrink_to_fit();  // kept until the body is written: the patch's size, not the compressor's bound
  auto& slot = p.tensor_frames[j.frame];
  slot = std::move(best);
  slot.meta.payload = slot.payload;
  p.jobs[job].encoding = best_c->encoding;
  release(piece);
  for (const auto& c : cands)
    if (auto r = ref_of(c); r.length) release(old_file.subspan(r.offset, r.length));
}

void finish_tensor_plan(plan& p) {
  // In job order (= file order), whatever order the threads finished in: the same bytes every time.
  for (const auto& j : p.jobs) {
    auto& stat = p.stats[j.stat];
    stat.encoding = j.encoding;  // the last chunk's, as a tensor-level summary
    stat.patch_bytes += p.tensor_frames[j.frame].payload.size();
  }
  p.jobs.clear();
}

plan build_generic_plan(bytes new_file) {
  plan p;
  if (!new_file.empty()) p.ops.push_back({core::body::op_kind::gap, 0, new_file.size()});
  return p;
}

}  // namespace mallorn::formats::detail
