#include "mallorn/proto/block_map.hpp"

#include <algorithm>

namespace mallorn::proto {

block_map::block_map(std::uint64_t patch_size, std::uint32_t block_size)
    : have_(block_size ? static_cast<std::size_t>((patch_size + block_size - 1) / block_size) : 0, false),
      patch_size_(patch_size),
      block_size_(block_size) {}

std::uint32_t block_map::length_of(std::uint32_t i) const {
  if (i >= have_.size()) return 0;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(block_size_, patch_size_ - offset_of(i)));
}

bool block_map::mark(std::uint32_t i) {
  if (i >= have_.size() || have_[i]) return false;
  have_[i] = true;
  ++held_;
  bytes_held_ += length_of(i);
  return true;
}

std::vector<std::uint32_t> block_map::next_window(std::uint32_t max_blocks, std::uint32_t max_span,
                                                  std::uint64_t max_bytes) const {
  std::vector<std::uint32_t> out;
  std::uint64_t bytes = 0;
  std::uint32_t first = 0;
  while (first < have_.size() && have_[first]) ++first;
  for (std::uint32_t i = first; i < have_.size() && i - first < max_span && out.size() < max_blocks; ++i) {
    if (have_[i]) continue;
    if (!out.empty() && bytes + length_of(i) > max_bytes) break;
    out.push_back(i);
    bytes += length_of(i);
  }
  return out;
}

}  // namespace mallorn::proto
