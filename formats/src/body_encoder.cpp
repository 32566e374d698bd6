// Serialises a plan as body frames in the order the one-pass decoder consumes them.
#include <algorithm>

#include "diff_plan.hpp"

namespace mallorn::formats::detail {
namespace {

namespace body = core::body;

constexpr std::size_t ops_per_frame = 32768;  // keeps a decoded ops frame well under max_ops_decoded
constexpr std::uint64_t merge_distance = 64;   // old-model gaps closer than this become one segment

// The old model's bytes outside tensors: where new metadata most likely comes from.
std::vector<body::segment> old_gaps(const model_layout& layout, std::uint64_t size) {
  std::vector<body::segment> out;
  std::uint64_t at = 0;
  auto add = [&](std::uint64_t from, std::uint64_t to) {
    if (to <= from) return;
    if (!out.empty() && from - (out.back().offset + out.back().length) < merge_distance)
      out.back().length = to - out.back().offset;
    else
      out.push_back({from, to - from});
  };
  for (const auto& t : layout.tensors) {
    add(at, t.offset);
    at = t.offset + t.size;
  }
  add(at, size);
  return out;
}

// Picks at most max_reference bytes of the old model as the reference for one gap chunk.
std::vector<body::segment> reference_for_gap(bytes old_file, const model_layout& ol, std::uint64_t new_size,
                                             std::uint64_t first_target) {
  std::uint64_t limit = body::max_reference;
  if (old_file.size() <= limit) return {{0, old_file.size()}};
  std::uint64_t center = new_size ? static_cast<std::uint64_t>(static_cast<long double>(first_target) *
                                                               old_file.size() / new_size)
                                  : 0;
  if (!ol.tensors.empty()) {
    auto gaps = old_gaps(ol, old_file.size());
    std::uint64_t total = 0;
    for (const auto& g : gaps) total += g.length;
    if (total <= limit && gaps.size() <= body::max_segments) return gaps;
  }
  // Raw data (or too much metadata): a window around the same relative position.
  std::uint64_t start = center > limit / 2 ? std::min(center - limit / 2, old_file.size() - limit) : 0;
  return {{start, limit}};
}

// The approximate matcher costs a suffix array of the reference and a scan: worth it when asking for
// a smaller patch (level >= 9), not at the fast default.
constexpr int approx_min_level = 9;
constexpr int lzma_min_level = 19;
constexpr int bwt_min_level = 19;

// The chunk's bytes, gathered from the new model (pages released once copied).
std::vector<std::uint8_t> gather(const gap_chunk& c, bytes new_file, const page_releaser& release) {
  std::vector<std::uint8_t> out;
  out.reserve(c.size);
  for (const auto& p : c.pieces) {
    auto src = new_file.subspan(p.offset, p.length);
    out.insert(out.end(), src.begin(), src.end());
    release(src);
  }
  return out;
}

// The index vectors that lie whole inside one piece of the chunk, moved to chunk offsets.
std::vector<body::index_vector> vectors_in_chunk(const gap_chunk& c, std::span<const body::index_vector> vectors) {
  std::vector<body::index_vector> out;
  std::uint64_t at = 0;  // chunk offset of the piece
  for (const auto& p : c.pieces) {
    auto it = std::lower_bound(vectors.begin(), vectors.end(), p.offset,
                               [](const body::index_vector& v, std::uint64_t off) { return v.offset < off; });
    for (; it != vectors.end() && it->offset < p.offset + p.length; ++it)
      if (it->count * it->width <= p.offset + p.length - it->offset)
        out.push_back({at + it->offset - p.offset, it->count, it->width});
    at += p.length;
  }
  return out;
}

void append_data(std::vector<std::uint8_t>& out, const encoded_frame& f) {
  body::append_frame(out, body::frame_type::data, body::encode_data_frame_payload(f.meta));
}

}  // namespace

std::vector<gap_chunk> cut_gap_stream(const plan& p) {
  std::vector<gap_chunk> chunks;
  for (const auto& o : p.ops) {
    if (o.kind != body::op_kind::gap) continue;
    std::uint64_t done = 0;
    while (done < o.length) {
      if (chunks.empty() || chunks.back().size == body::max_chunk) {
        chunks.emplace_back();
        chunks.back().first_target = o.target_offset + done;
      }
      auto& c = chunks.back();
      auto n = std::min<std::uint64_t>(o.length - done, body::max_chunk - c.size);
      c.pieces.push_back({o.target_offset + done, n});
      c.size += n;
      done += n;
    }
  }
  return chunks;
}

// Gap bytes are metadata: either zstd against the reference (exact matches) or bsdiff-style
// approximate matches (numbers that shifted slightly), whichever is smaller.
void compress_gap_chunk(gap_chunk& c, bytes old_file, const model_layout& ol, bytes new_file,
                        std::span<const body::index_vector> new_index_vectors, int level, gap_reference_cache& cache,
                        const page_releaser& release) {
  auto chunk_bytes = gather(c, new_file, release);
  auto& m = c.frame.meta;
  m.ch = body::channel::gap;
  m.out_len = chunk_bytes.size();
  const auto& ref = cache.get(reference_for_gap(old_file, ol, new_file.size(), c.first_target), old_file);
  m.reference = ref.segments;
  if (ref.bytes_view.empty()) m.reference.clear();
  m.tf = ref.bytes_view.empty() ? body::transform::raw : body::transform::prefix;
  c.frame.payload = body::encode_payload(m, chunk_bytes, ref.bytes_view, level);
  // The approximate matcher pays off on similar-but-shifted data; on novel bytes (zstd already near
  // the chunk's size) it only burns time searching at every position, so it is skipped there.
  if (level >= approx_min_level && !ref.bytes_view.empty() && c.frame.payload.size() * 2 < chunk_bytes.size()) {
    if (auto parts = match_approx(ref.index(), chunk_bytes)) {
      auto approx = body::pack_approx(parts->steps, parts->diff, parts->extra, level);
      if (!approx.empty() && approx.size() < c.frame.payload.size()) {
        m.tf = body::transform::approx;
        c.frame.payload = std::move(approx);
      }
      // Zero runs instead of zstd blocks of zero differences, and no zstd frame header: what
      // decides a tiny patch (a few edits in a large file).
      auto sparse = body::pack_sparse_approx(parts->steps, parts->diff, parts->extra, level);
      if (!sparse.empty() && sparse.size() < c.frame.payload.size()) {
        m.tf = body::transform::sparse_approx;
        c.frame.payload = std::move(sparse);
      }
    }
  }
  // LZMA2 (literal contexts, rep-matches, optimal parsing) beats zstd on novel structured metadata
  // but costs seconds per chunk with a 16 MiB dictionary: only at the server's high levels.
  if (level >= lzma_min_level) {
    body::data_frame lz = m;
    lz.tf = body::transform::lzma;
    auto packed = body::encode_payload(lz, chunk_bytes, ref.bytes_view, level);
    if (!packed.empty() && packed.size() < c.frame.payload.size()) {
      m.tf = body::transform::lzma;
      c.frame.payload = std::move(packed);
    }
  }
  // bzip2 has no dictionary, but its block sorting packs novel tables tighter than LZ77 can.
  if (level >= bwt_min_level) {
    body::data_frame bw = m;
    bw.tf = body::transform::bwt;
    bw.plane_width = 1;
    bw.reference.clear();
    auto packed = body::encode_payload(bw, chunk_bytes, {}, level);
    if (!packed.empty() && packed.size() < c.frame.payload.size()) {
      m = bw;
      c.frame.payload = std::move(packed);
    }
  }
  // A pruned model's sparse index vectors are near-random bits that no coder above packs well as
  // integers; as bitmaps (the rest of the chunk unchanged) each of those coders gets close to
  // their entropy.
  if (auto vectors = vectors_in_chunk(c, new_index_vectors); !vectors.empty()) {
    bool have_ref = !ref.bytes_view.empty();
    std::vector<body::transform> inners{have_ref ? body::transform::prefix : body::transform::raw};
    if (level >= lzma_min_level) inners.push_back(body::transform::lzma);
    if (level >= bwt_min_level) inners.push_back(body::transform::bwt);
    for (auto inner : inners) {
      bool uses_ref = have_ref && inner != body::transform::bwt;
      auto packed = body::pack_index_bitmap(vectors, inner, chunk_bytes, uses_ref ? ref.bytes_view : bytes{}, level);
      if (packed.empty() || packed.size() >= c.frame.payload.size()) continue;
      m.tf = body::transform::index_bitmap;
      m.plane_width = 1;
      m.reference = uses_ref ? ref.segments : std::vector<body::segment>{};
      c.frame.payload = std::move(packed);
    }
  }
  c.frame.payload.shrink_to_fit();
  m.payload = c.frame.payload;
}

const gap_reference_cache::entry& gap_reference_cache::get(const std::vector<body::segment>& segments, bytes old_file) {
  std::lock_guard lock(mutex_);  // chunks are compressed on several threads
  for (const auto& e : entries_) {
    bool same = e->segments.size() == segments.size() &&
                std::equal(segments.begin(), segments.end(), e->segments.begin(),
                           [](const auto& a, const auto& b) { return a.offset == b.offset && a.length == b.length; });
    if (same) return *e;
  }
  auto e = std::make_unique<entry>();
  e->segments = segments;
  if (segments.size() == 1) {
    e->bytes_view = old_file.subspan(segments[0].offset, segments[0].length);
  } else {
    for (const auto& s : segments) {
      auto part = old_file.subspan(s.offset, s.length);
      e->joined.insert(e->joined.end(), part.begin(), part.end());
    }
    e->bytes_view = e->joined;
  }
  entries_.push_back(std::move(e));
  return *entries_.back();
}

encoded_body assemble_body(const plan& p, const std::vector<gap_chunk>& chunks, const diff_options& opts) {
  encoded_body result;
  // The whole target from one gap chunk: the single-frame body of container version 3 (no ops
  // frame, frame header or end frame; see docs/patch-format.md).
  if (p.ops.size() == 1 && p.ops[0].kind == body::op_kind::gap && chunks.size() == 1) {
    result.bytes = body::encode_single_frame_body(chunks[0].frame.meta);
    if (result.bytes.size() <= body::max_frame) {
      result.single_frame = true;
      return result;
    }
    result.bytes.clear();
  }
  auto& out = result.bytes;
  std::uint64_t prev_copy_end = 0;
  std::size_t next_chunk = 0;
  std::uint64_t gap_left = 0;  // bytes of the current gap chunk not yet consumed
  for (std::size_t first = 0; first < p.ops.size(); first += ops_per_frame) {
    std::size_t last = std::min(p.ops.size(), first + ops_per_frame);
    std::vector<body::op> group;
    group.reserve(last - first);
    for (std::size_t i = first; i < last; ++i) group.push_back({p.ops[i].kind, p.ops[i].length, p.ops[i].source_offset});
    body::append_frame(out, body::frame_type::ops, body::encode_ops(group, prev_copy_end, opts.level));
    // Replay the decoder: each time it runs dry on a channel, the next frame of that channel follows.
    for (std::size_t i = first; i < last; ++i) {
      const auto& o = p.ops[i];
      if (o.kind == body::op_kind::tensor) {
        append_data(out, p.tensor_frames[o.frame]);
      } else if (o.kind == body::op_kind::gap) {
        std::uint64_t need = o.length;
        while (need > 0) {
          if (gap_left == 0) {
            append_data(out, chunks[next_chunk].frame);
            gap_left = chunks[next_chunk].size;
            ++next_chunk;
          }
          auto n = std::min(need, gap_left);
          need -= n;
          gap_left -= n;
        }
      }
    }
  }
  body::append_frame(out, body::frame_type::end, {});
  return result;
}

}  // namespace mallorn::formats::detail
