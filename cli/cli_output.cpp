#include "cli_output.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace mallorn::cli {

int report_error(const core::error& e, bool json) {
  if (json) {
    print_json({{"ok", false},
                {"error", {{"code", core::errc_name(e.code)}, {"code_num", static_cast<int>(e.code)}, {"message", e.message}}}});
  } else {
    std::cerr << "mallorn: " << e.what() << "\n";
  }
  return exit_failed;
}

int usage_error(const std::string& message, const std::string& command, bool json) {
  if (json) {
    print_json({{"ok", false}, {"error", {{"code", "Usage"}, {"code_num", exit_usage}, {"message", message}}}});
  } else {
    std::cerr << "mallorn: " << message << "\n"
              << "Try 'mallorn " << (command.empty() ? "" : command + " ") << "--help'.\n";
  }
  return exit_usage;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

progress_bar::progress_bar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}

progress_bar::~progress_bar() {
  if (drawn_) std::fputs("\n", stderr);
}

core::progress_fn progress_bar::callback() {
  if (!enabled_) return {};
  return [this](std::uint64_t done, std::uint64_t total) { draw(done, total); };
}

void progress_bar::draw(std::uint64_t done, std::uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int width = 32;
  double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  int filled = static_cast<int>(frac * width);
  std::fprintf(stderr, "\r%-8s [%.*s%*s] %5.1f%%  %.1f/%.1f MB", label_.c_str(), filled,
               "################################", width - filled, "", frac * 100, done / 1e6, total / 1e6);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace mallorn::cli
