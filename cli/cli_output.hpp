// How the CLI reports: human text or one JSON object, errors with the seed's taxonomy, and a
// progress bar on stderr when it is a terminal.
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/core/patch_applier.hpp"

namespace mallorn::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;

// Prints the error (stderr, or a JSON object on stdout with --json) and returns exit_failed.
int report_error(const core::error& e, bool json);
// Prints a usage error and returns exit_usage.
int usage_error(const std::string& message, const std::string& command, bool json);
void print_json(const nlohmann::json& j);

// Redraws at most 10 times a second; silent unless stderr is a TTY.
class progress_bar {
 public:
  explicit progress_bar(std::string label);
  ~progress_bar();
  core::progress_fn callback();

 private:
  void draw(std::uint64_t done, std::uint64_t total);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace mallorn::cli
