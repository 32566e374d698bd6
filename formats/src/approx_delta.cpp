#include "approx_delta.hpp"

#include <divsufsort.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace mallorn::formats::detail {
namespace {

std::int64_t match_length(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  std::size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<std::int64_t>(i);
}

}  // namespace

suffix_index::suffix_index(std::span<const std::uint8_t> ref) : ref_(ref), sa_(ref.size()) {
  if (!ref.empty()) divsufsort(ref.data(), sa_.data(), static_cast<saidx_t>(ref.size()));
}

std::pair<std::int64_t, std::int64_t> suffix_index::longest_match(std::span<const std::uint8_t> target) const {
  if (sa_.empty()) return {0, 0};
  std::size_t lo = 0, hi = sa_.size() - 1;
  // Binary search for the suffixes that bracket `target`; the longer of the two matches wins.
  while (hi - lo >= 2) {
    std::size_t mid = lo + (hi - lo) / 2;
    auto suffix = ref_.subspan(sa_[mid]);
    std::size_t n = std::min(suffix.size(), target.size());
    if (std::memcmp(suffix.data(), target.data(), n) < 0) lo = mid;
    else hi = mid;
  }
  auto a = match_length(ref_.subspan(sa_[lo]), target), b = match_length(ref_.subspan(sa_[hi]), target);
  return a > b ? std::pair{static_cast<std::int64_t>(sa_[lo]), a} : std::pair{static_cast<std::int64_t>(sa_[hi]), b};
}

std::optional<approx_parts> match_approx(const suffix_index& index, std::span<const std::uint8_t> target) {
  const auto old = index.ref();
  const std::int64_t old_size = static_cast<std::int64_t>(old.size()), new_size = static_cast<std::int64_t>(target.size());
  approx_parts parts;
  auto& steps = parts.steps;
  auto& diff = parts.diff;
  auto& extra = parts.extra;
  std::int64_t scan = 0, len = 0, pos = 0, last_scan = 0, last_pos = 0, last_offset = 0;
  // bsdiff's scan can go quadratic on repetitive data; past this much work zstd's answer stands.
  std::int64_t budget = 48 * new_size + (1 << 20);
  while (scan < new_size) {
    std::int64_t old_score = 0;
    std::int64_t scsc = scan += len;
    for (; scan < new_size; ++scan) {
      std::tie(pos, len) = index.longest_match(target.subspan(scan));
      budget -= len + 64;
      if (budget < 0) return std::nullopt;
      for (; scsc < scan + len; ++scsc)
        if (scsc + last_offset < old_size && old[scsc + last_offset] == target[scsc]) ++old_score;
      // A new exact match that is clearly better than continuing the current alignment.
      if ((len == old_score && len != 0) || len > old_score + 8) break;
      if (scan + last_offset < old_size && old[scan + last_offset] == target[scan]) --old_score;
    }
    if (len == old_score && scan != new_size) continue;
    // Extend the previous match forwards and this one backwards while they agree on most bytes.
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
    if (last_scan + len_f > scan - len_b) {  // the two extensions overlap: split where it is best
      std::int64_t overlap = last_scan + len_f - (scan - len_b), so = 0, best_s = 0, len_s = 0;
      for (std::int64_t i = 0; i < overlap; ++i) {
        if (target[last_scan + len_f - overlap + i] == old[last_pos + len_f - overlap + i]) ++so;
        if (target[scan - len_b + i] == old[pos - len_b + i]) --so;
        if (so > best_s) best_s = so, len_s = i + 1;
      }
      len_f += len_s - overlap;
      len_b -= len_s;
    }
    for (std::int64_t i = 0; i < len_f; ++i)
      diff.push_back(static_cast<std::uint8_t>(target[last_scan + i] - old[last_pos + i]));
    std::int64_t extra_len = (scan - len_b) - (last_scan + len_f);
    extra.insert(extra.end(), target.begin() + last_scan + len_f, target.begin() + scan - len_b);
    steps.push_back({static_cast<std::uint64_t>(len_f), static_cast<std::uint64_t>(extra_len),
                     (pos - len_b) - (last_pos + len_f)});
    last_scan = scan - len_b;
    last_pos = pos - len_b;
    last_offset = pos - scan;
  }
  return parts;
}

std::vector<std::uint8_t> encode_approx(const suffix_index& index, std::span<const std::uint8_t> target, int level) {
  auto parts = match_approx(index, target);
  if (!parts) return {};
  return core::body::pack_approx(parts->steps, parts->diff, parts->extra, level);
}

}  // namespace mallorn::formats::detail
