#include "cli_progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace mallorn::cli {

progress_bar::progress_bar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}

core::progress_fn progress_bar::callback() {
  if (!enabled_) return {};
  return [this](std::uint64_t done, std::uint64_t total) { draw(done, total); };
}

void progress_bar::draw(std::uint64_t done, std::uint64_t total) {
  // Libraries may call this per chunk (thousands of times a second): redraw at most 10 times a
  // second and only when the shown value changes; terminals are slow.
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100)) return;
  double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  if (frac > 1) frac = 1;
  int permille = static_cast<int>(frac * 1000);
  if (permille == last_permille_) return;
  // Short operations finish before a bar would be readable; do not flash one.
  if (!drawn_ && now - start_ < std::chrono::milliseconds(300)) return;
  last_ = now;
  last_permille_ = permille;
  constexpr int width = 30;
  int filled = static_cast<int>(frac * width);
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%-7s [%s] %5.1f%%  %.1f / %.1f MB", label_.c_str(), bar.c_str(), frac * 100, done / 1e6,
               total / 1e6);
  std::fflush(stderr);
  drawn_ = true;
}

void progress_bar::clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace mallorn::cli
