#include "mcu_ops.hpp"

#include <algorithm>
#include <array>
#include <tuple>

#include "approx_delta.hpp"
#include "mcu_range_coder.hpp"

namespace mallorn::formats::detail {
namespace {

// A run of equal bytes inside an aligned region shorter than this stays in the add op: an op
// switch costs more than a few well-predicted zero differences.
constexpr std::uint32_t min_copy_run = 16;

// One aligned region of bsdiff's output: target[new_pos, +add) ~ old[old_pos, +add), then
// `extra` bytes with no counterpart.
struct region {
  std::int64_t new_pos, old_pos, add, extra;
};

// Colin Percival's bsdiff scan: exact matches from the suffix array, extended forwards and
// backwards while they agree on most bytes (so weights that changed a little still align).
std::vector<region> bsdiff_regions(const suffix_index& index, std::span<const std::uint8_t> target,
                                   const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  const auto old = index.ref();
  const std::int64_t old_size = static_cast<std::int64_t>(old.size()), new_size = static_cast<std::int64_t>(target.size());
  std::vector<region> out;
  std::int64_t scan = 0, len = 0, pos = 0, last_scan = 0, last_pos = 0, last_offset = 0, reported = 0;
  while (scan < new_size) {
    std::int64_t old_score = 0;
    std::int64_t scsc = scan += len;
    for (; scan < new_size; ++scan) {
      std::tie(pos, len) = index.longest_match(target.subspan(scan));
      for (; scsc < scan + len; ++scsc)
        if (scsc + last_offset < old_size && old[scsc + last_offset] == target[scsc]) ++old_score;
      if ((len == old_score && len != 0) || len > old_score + 8) break;
      if (scan + last_offset < old_size && old[scan + last_offset] == target[scan]) --old_score;
    }
    if (len == old_score && scan != new_size) continue;
    std::int64_t s = 0, best_f = 0, len_f = 0;
    for (std::int64_t i = 0; last_scan + i < scan && last_pos + i < old_size;) {
      if (old[last_pos + i] == target[last_scan + i]) ++s;
      ++i;
      if (s * 2 - i > best_f * 2 - len_f) best_f = s, len_f = i;
    }
    std::int64_t len_b = 0;
    if (scan < new_size) {
      std::int64_t sb = 0, best_b = 0;
      for (std::int64_t i = 1; scan >= last_scan + i && pos >= i; ++i) {
        if (old[pos - i] == target[scan - i]) ++sb;
        if (sb * 2 - i > best_b * 2 - len_b) best_b = sb, len_b = i;
      }
    }
    if (last_scan + len_f > scan - len_b) {
      std::int64_t overlap = last_scan + len_f - (scan - len_b), so = 0, best_s = 0, len_s = 0;
      for (std::int64_t i = 0; i < overlap; ++i) {
        if (target[last_scan + len_f - overlap + i] == old[last_pos + len_f - overlap + i]) ++so;
        if (target[scan - len_b + i] == old[pos - len_b + i]) --so;
        if (so > best_s) best_s = so, len_s = i + 1;
      }
      len_f += len_s - overlap;
      len_b -= len_s;
    }
    out.push_back({last_scan, last_pos, len_f, (scan - len_b) - (last_scan + len_f)});
    last_scan = scan - len_b;
    last_pos = pos - len_b;
    last_offset = pos - scan;
    if (progress && scan - reported >= (1 << 16)) {
      reported = scan;
      progress(static_cast<std::uint64_t>(scan), static_cast<std::uint64_t>(new_size));
    }
  }
  return out;
}

// Earlier output positions by their first min_match bytes (hash chains), for matches within the
// new image.
class output_matcher {
 public:
  static constexpr std::uint32_t min_match = 6;
  static constexpr std::uint32_t max_distance = (1u << mcu_dist_bits) - 1;

  output_matcher(std::span<const std::uint8_t> target, unsigned depth)
      : t_(target), depth_(depth), head_(1u << 16, -1), prev_(depth ? target.size() : 0, -1) {}

  // Longest match for target[pos, end) among earlier positions: {distance, length}; length 0 if none.
  std::pair<std::uint32_t, std::uint32_t> find(std::uint32_t pos, std::uint32_t end) {
    if (!depth_) return {0, 0};
    insert_upto(pos);
    if (end - pos < min_match) return {0, 0};
    std::uint32_t best_len = 0, best_dist = 0;
    std::int64_t cand = head_[hash(pos)];
    for (unsigned i = 0; i < depth_ && cand >= 0 && pos - cand <= max_distance; ++i, cand = prev_[cand]) {
      auto c = static_cast<std::uint32_t>(cand);
      std::uint32_t len = 0;
      while (pos + len < end && t_[c + len] == t_[pos + len]) ++len;
      if (len > best_len) best_len = len, best_dist = pos - c;
    }
    return best_len >= min_match ? std::pair{best_dist, best_len} : std::pair{0u, 0u};
  }

 private:
  std::uint32_t hash(std::uint32_t p) const {
    std::uint32_t v = 0;
    for (std::uint32_t i = 0; i < min_match; ++i) v = v * 0x9E3779B1u + t_[p + i];
    return (v >> 16) & 0xFFFFu;
  }
  void insert_upto(std::uint32_t pos) {
    for (; next_ < pos; ++next_) {
      if (next_ + min_match > t_.size()) continue;
      auto h = hash(next_);
      prev_[next_] = head_[h];
      head_[h] = next_;
    }
  }
  std::span<const std::uint8_t> t_;
  unsigned depth_;
  std::vector<std::int64_t> head_, prev_;
  std::uint32_t next_ = 0;
};

class op_builder {
 public:
  op_builder(std::span<const std::uint8_t> old, std::span<const std::uint8_t> target, std::uint32_t window, unsigned depth)
      : old_(old), target_(target), window_(window), matcher_(target, depth) {}

  // Bytes with no counterpart in the old image: matches into earlier output where they pay, else
  // literals.
  void fresh(std::uint32_t new_pos, std::uint32_t n) {
    std::uint32_t end = new_pos + n, lit_start = new_pos;
    for (std::uint32_t pos = new_pos; pos < end;) {
      auto [dist, len] = matcher_.find(pos, end);
      if (len == 0) {
        ++pos;
        continue;
      }
      literal(lit_start, pos - lit_start);
      ops_.push_back({mcu_op_kind::match, pos, 0, len, dist});
      pos += len;
      lit_start = pos;
    }
    literal(lit_start, end - lit_start);
  }

  void literal(std::uint32_t new_pos, std::uint32_t n) {
    if (n == 0) return;
    if (!ops_.empty() && ops_.back().kind == mcu_op_kind::literal && ops_.back().new_pos + ops_.back().length == new_pos)
      ops_.back().length += n;
    else
      ops_.push_back({mcu_op_kind::literal, new_pos, 0, n, 0});
  }

  // An aligned region: copies where the bytes are equal for a while, adds elsewhere; a literal
  // when the old bytes lie further back than the device may read.
  void aligned(std::uint32_t new_pos, std::uint32_t old_pos, std::uint32_t n) {
    if (n == 0) return;
    if (hw_ > window_ && old_pos < hw_ - window_) return fresh(new_pos, n);
    if (old_pos != cursor_) ops_.push_back({mcu_op_kind::seek, 0, 0, 0, static_cast<std::int64_t>(old_pos) - cursor_});
    // Maximal runs of equal / differing bytes; long equal runs are copies, the rest adds
    // (consecutive adds merge in emit()).
    for (std::uint32_t i = 0, j; i < n; i = j) {
      bool equal = old_[old_pos + i] == target_[new_pos + i];
      for (j = i + 1; j < n && (old_[old_pos + j] == target_[new_pos + j]) == equal; ++j) {
      }
      emit(equal && j - i >= min_copy_run ? mcu_op_kind::copy : mcu_op_kind::add, new_pos + i, old_pos + i, j - i);
    }
    cursor_ = old_pos + n;
    hw_ = std::max(hw_, cursor_);
  }

  std::vector<mcu_op> take() { return std::move(ops_); }

 private:
  void emit(mcu_op_kind k, std::uint32_t new_pos, std::uint32_t old_pos, std::uint32_t n) {
    if (n == 0) return;
    if (!ops_.empty() && ops_.back().kind == k && k != mcu_op_kind::seek &&
        ops_.back().new_pos + ops_.back().length == new_pos && ops_.back().old_pos + ops_.back().length == old_pos)
      ops_.back().length += n;
    else
      ops_.push_back({k, new_pos, old_pos, n, 0});
  }

  std::span<const std::uint8_t> old_, target_;
  std::uint32_t window_;
  output_matcher matcher_;
  std::uint32_t cursor_ = 0, hw_ = 0;
  std::vector<mcu_op> ops_;
};

// Adaptive models of one block: the same layout as struct ml_models in firmware/src/mallorn_lite.c.
struct block_models {
  std::array<std::array<std::uint16_t, 3>, 4> kind;
  std::array<std::uint16_t, 4> other;
  std::array<std::array<std::uint16_t, mcu_len_bits>, 4> len;
  std::uint16_t seek_sign;
  std::array<std::uint16_t, mcu_seek_bits> seek;
  std::array<std::uint16_t, mcu_dist_bits> dist;
  std::array<std::uint16_t, 255> byte;
  block_models() {
    for (auto& k : kind) k.fill(mcu_prob_init);
    other.fill(mcu_prob_init);
    for (auto& l : len) l.fill(mcu_prob_init);
    seek_sign = mcu_prob_init;
    seek.fill(mcu_prob_init);
    dist.fill(mcu_prob_init);
    byte.fill(mcu_prob_init);
  }
};

void put_gamma(mcu_range_encoder& rc, std::uint16_t* pre, unsigned bits, std::uint32_t v) {
  unsigned n = 0;
  for (std::uint32_t t = v; t; t >>= 1) ++n;
  for (unsigned i = 1; i < n; ++i) rc.bit(pre[i - 1], 1);
  if (n < bits) rc.bit(pre[n - 1], 0);
  for (int i = static_cast<int>(n) - 2; i >= 0; --i) rc.direct((v >> i) & 1u);
}

void put_byte(mcu_range_encoder& rc, block_models& m, std::uint8_t b) {
  unsigned node = 1;
  for (int i = 7; i >= 0; --i) {
    unsigned bit = (b >> i) & 1u;
    rc.bit(m.byte[node - 1], bit);
    node = (node << 1) | bit;
  }
}

void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

std::vector<std::uint8_t> encode_block(std::span<const mcu_op> ops, std::span<const std::uint8_t> old,
                                       std::span<const std::uint8_t> target) {
  mcu_range_encoder rc;
  block_models m;
  unsigned prev = 0;
  for (const auto& op : ops) {
    auto k = static_cast<unsigned>(op.kind);
    unsigned k2 = std::min(k, 3u);  // seek and match share the 2-bit code 3, then one more bit
    rc.bit(m.kind[prev][0], k2 >> 1);
    rc.bit(m.kind[prev][1 + (k2 >> 1)], k2 & 1u);
    if (k2 == 3) rc.bit(m.other[prev], k == 4);
    prev = k2;
    if (op.kind == mcu_op_kind::match) {
      put_gamma(rc, m.len[3].data(), mcu_len_bits, op.length);
      put_gamma(rc, m.dist.data(), mcu_dist_bits, static_cast<std::uint32_t>(op.delta));
      continue;
    }
    if (op.kind == mcu_op_kind::seek) {
      rc.bit(m.seek_sign, op.delta < 0);
      put_gamma(rc, m.seek.data(), mcu_seek_bits, static_cast<std::uint32_t>(op.delta < 0 ? -op.delta : op.delta));
      continue;
    }
    put_gamma(rc, m.len[k].data(), mcu_len_bits, op.length);
    if (op.kind == mcu_op_kind::literal)
      for (std::uint32_t i = 0; i < op.length; ++i) put_byte(rc, m, target[op.new_pos + i]);
    else if (op.kind == mcu_op_kind::add)
      for (std::uint32_t i = 0; i < op.length; ++i)
        put_byte(rc, m, static_cast<std::uint8_t>(target[op.new_pos + i] - old[op.old_pos + i]));
  }
  return rc.finish();
}

}  // namespace

std::vector<mcu_op> plan_mcu_ops(std::span<const std::uint8_t> old, std::span<const std::uint8_t> target,
                                 std::uint32_t window, unsigned match_depth,
                                 const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
  op_builder b(old, target, window, match_depth);
  if (old.empty()) {
    b.fresh(0, static_cast<std::uint32_t>(target.size()));
    return b.take();
  }
  suffix_index index(old);
  auto regions = bsdiff_regions(index, target, progress);
  // The device may not read further back than `window` behind the furthest old byte it read.
  // A region far ahead of the others (metadata that moved from the end to the front, say)
  // would put everything after it out of reach: it is sent as literals instead when the aligned
  // bytes it would cut off (among the next regions) outweigh its own.
  constexpr std::size_t horizon = 512;
  const std::int64_t w = window;
  std::int64_t hw = 0;
  auto reachable = [&](std::int64_t old_pos, std::int64_t high) { return high <= w || old_pos >= high - w; };
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    bool keep = r.add > 0 && reachable(r.old_pos, hw);
    std::int64_t high = std::max(hw, r.old_pos + r.add);
    if (keep && high > hw + w) {
      std::int64_t cut_off = 0;
      for (std::size_t k = i + 1; k < regions.size() && k <= i + horizon; ++k)
        if (regions[k].add > 0 && reachable(regions[k].old_pos, hw) && !reachable(regions[k].old_pos, high))
          cut_off += regions[k].add;
      keep = cut_off <= r.add;
    }
    if (keep) {
      b.aligned(static_cast<std::uint32_t>(r.new_pos), static_cast<std::uint32_t>(r.old_pos), static_cast<std::uint32_t>(r.add));
      hw = high;
    } else {
      b.fresh(static_cast<std::uint32_t>(r.new_pos), static_cast<std::uint32_t>(r.add));
    }
    b.fresh(static_cast<std::uint32_t>(r.new_pos + r.add), static_cast<std::uint32_t>(r.extra));
  }
  return b.take();
}

std::vector<std::uint8_t> encode_mcu_blocks(std::span<const mcu_op> ops, std::span<const std::uint8_t> old,
                                            std::span<const std::uint8_t> target, std::uint32_t block_size) {
  std::vector<std::uint8_t> body;
  std::vector<mcu_op> block, pending_seeks;
  std::uint32_t block_end = std::min<std::uint32_t>(block_size, static_cast<std::uint32_t>(target.size()));
  auto close_block = [&] {
    if (block.size() == 1 && block[0].kind == mcu_op_kind::copy) {
      body.push_back(0);  // a block that is one copy from the old cursor needs no coded bytes
      block.clear();
      return;
    }
    auto bytes = encode_block(block, old, target);
    put_varint(body, bytes.size());
    body.insert(body.end(), bytes.begin(), bytes.end());
    block.clear();
  };
  for (auto op : ops) {
    if (op.kind == mcu_op_kind::seek) {
      pending_seeks.push_back(op);  // a seek belongs to the block of the op that reads after it
      continue;
    }
    while (op.length) {
      if (op.new_pos == block_end) {
        close_block();
        block_end = std::min<std::uint32_t>(block_end + block_size, static_cast<std::uint32_t>(target.size()));
      }
      block.insert(block.end(), pending_seeks.begin(), pending_seeks.end());
      pending_seeks.clear();
      mcu_op part = op;
      part.length = std::min(op.length, block_end - op.new_pos);
      block.push_back(part);
      op.new_pos += part.length;
      if (op.kind != mcu_op_kind::literal) op.old_pos += part.length;
      op.length -= part.length;
    }
  }
  if (!target.empty()) close_block();
  return body;
}

}  // namespace mallorn::formats::detail
