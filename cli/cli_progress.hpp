// A progress bar on stderr for the long commands (diff, patch, verify). Silent unless stderr is a
// terminal, so pipes, logs and --json consumers never see control characters.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "mallorn/core/patch_applier.hpp"

namespace mallorn::cli {

class progress_bar {
 public:
  explicit progress_bar(std::string label);
  ~progress_bar() { clear(); }
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;

  // The callback to hand to diff_options / apply_options (empty when disabled, which lets the
  // libraries skip the calls entirely).
  core::progress_fn callback();
  // Erases the bar so that the result or error message starts on a clean line.
  void clear();

 private:
  void draw(std::uint64_t done, std::uint64_t total);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  int last_permille_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace mallorn::cli
