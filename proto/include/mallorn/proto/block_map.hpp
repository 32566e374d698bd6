// Which blocks of a patch a device holds, and the next window of missing ones to ask for.
#pragma once
#include <cstdint>
#include <vector>

namespace mallorn::proto {

class block_map {
 public:
  block_map() = default;
  block_map(std::uint64_t patch_size, std::uint32_t block_size);

  std::uint32_t blocks() const { return static_cast<std::uint32_t>(have_.size()); }
  std::uint32_t block_size() const { return block_size_; }
  std::uint64_t patch_size() const { return patch_size_; }
  // Bytes in block i (the last one may be short).
  std::uint32_t length_of(std::uint32_t i) const;
  std::uint64_t offset_of(std::uint32_t i) const { return std::uint64_t(i) * block_size_; }

  bool has(std::uint32_t i) const { return i < have_.size() && have_[i]; }
  // Returns false if i is out of range or already held.
  bool mark(std::uint32_t i);
  std::uint32_t held() const { return held_; }
  std::uint64_t bytes_held() const { return bytes_held_; }
  bool complete() const { return held_ == have_.size(); }

  // Up to `max_blocks` missing blocks starting at the first missing one, spanning at most
  // `max_span` consecutive indices (so they fit one bitmap request) and at most `max_bytes`.
  std::vector<std::uint32_t> next_window(std::uint32_t max_blocks, std::uint32_t max_span, std::uint64_t max_bytes) const;

 private:
  std::vector<bool> have_;
  std::uint64_t patch_size_ = 0;
  std::uint32_t block_size_ = 0;
  std::uint32_t held_ = 0;
  std::uint64_t bytes_held_ = 0;
};

}  // namespace mallorn::proto
