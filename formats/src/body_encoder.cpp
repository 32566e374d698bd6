// Serialises a plan as body frames in the order the one-pass decoder consumes them.
#include <algorithm>

#include "diff_plan.hpp"

namespace mallorn::formats::detail {
namespace {

namespace body = core::body;

constexpr std::size_t ops_per_frame = 32768;  // keeps a decoded ops frame well under max_ops_decoded
constexpr std::uint64_t merge_distance = 64;   // old-model gaps closer than this become one segment

struct gap_chunk {
  std::vector<std::uint8_t> bytes;
  std::uint64_t first_target = 0;  // target offset of its first byte
  encoded_frame frame;
};

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

std::vector<gap_chunk> cut_gap_stream(const plan& p, bytes new_file) {
  std::vector<gap_chunk> chunks;
  for (const auto& o : p.ops) {
    if (o.kind != body::op_kind::gap) continue;
    std::uint64_t done = 0;
    while (done < o.length) {
      if (chunks.empty() || chunks.back().bytes.size() == body::max_chunk) {
        chunks.emplace_back();
        chunks.back().first_target = o.target_offset + done;
      }
      auto& c = chunks.back();
      auto n = std::min<std::uint64_t>(o.length - done, body::max_chunk - c.bytes.size());
      auto src = new_file.subspan(o.target_offset + done, n);
      c.bytes.insert(c.bytes.end(), src.begin(), src.end());
      done += n;
    }
  }
  return chunks;
}

// The approximate matcher costs a suffix array of the reference and a scan: worth it when asking for
// a smaller patch (level >= 9), not at the fast default.
constexpr int approx_min_level = 9;
constexpr int lzma_min_level = 19;
constexpr int bwt_min_level = 19;

// Gap bytes are metadata: either zstd against the reference (exact matches) or bsdiff-style
// approximate matches (numbers that shifted slightly), whichever is smaller.
void compress_gap_chunk(gap_chunk& c, bytes old_file, const model_layout& ol, std::uint64_t new_size, int level,
                        gap_reference_cache& cache) {
  auto& m = c.frame.meta;
  m.ch = body::channel::gap;
  m.out_len = c.bytes.size();
  const auto& ref = cache.get(reference_for_gap(old_file, ol, new_size, c.first_target), old_file);
  m.reference = ref.segments;
  if (ref.bytes_view.empty()) m.reference.clear();
  m.tf = ref.bytes_view.empty() ? body::transform::raw : body::transform::prefix;
  c.frame.payload = body::encode_payload(m, c.bytes, ref.bytes_view, level);
  // The approximate matcher pays off on similar-but-shifted data; on novel bytes (zstd already near
  // the chunk's size) it only burns time searching at every position, so it is skipped there.
  if (level >= approx_min_level && !ref.bytes_view.empty() && c.frame.payload.size() * 2 < c.bytes.size()) {
    auto approx = encode_approx(ref.index(), c.bytes, level);
    if (!approx.empty() && approx.size() < c.frame.payload.size()) {
      m.tf = body::transform::approx;
      c.frame.payload = std::move(approx);
    }
  }
  // LZMA2 (literal contexts, rep-matches, optimal parsing) beats zstd on novel structured metadata
  // but costs seconds per chunk with a 16 MiB dictionary: only at the server's high levels.
  if (level >= lzma_min_level) {
    body::data_frame lz = m;
    lz.tf = body::transform::lzma;
    auto packed = body::encode_payload(lz, c.bytes, ref.bytes_view, level);
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
    auto packed = body::encode_payload(bw, c.bytes, {}, level);
    if (!packed.empty() && packed.size() < c.frame.payload.size()) {
      m = bw;
      c.frame.payload = std::move(packed);
    }
  }
  m.payload = c.frame.payload;
}

void append_data(std::vector<std::uint8_t>& out, const encoded_frame& f) {
  body::append_frame(out, body::frame_type::data, body::encode_data_frame_payload(f.meta));
}

}  // namespace

const gap_reference_cache::entry& gap_reference_cache::get(const std::vector<body::segment>& segments, bytes old_file) {
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

std::vector<std::uint8_t> encode_body(const plan& p, bytes old_file, const model_layout& old_layout, bytes new_file,
                                      const diff_options& opts, gap_reference_cache& cache) {
  auto chunks = cut_gap_stream(p, new_file);
  for (auto& c : chunks) compress_gap_chunk(c, old_file, old_layout, new_file.size(), opts.level, cache);

  std::vector<std::uint8_t> out;
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
            gap_left = chunks[next_chunk].bytes.size();
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
  return out;
}

}  // namespace mallorn::formats::detail
