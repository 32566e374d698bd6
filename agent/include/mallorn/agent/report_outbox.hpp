// Reports the server could not take (it was down, or the network was) wait here, one JSON object
// per line in <model dir>/reports.pending, and are sent in order on the next contact, so the fleet
// view learns why an update stalled even when it stalled because the server was gone.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::agent {

class report_outbox {
 public:
  static constexpr std::size_t max_reports = 200;  // the oldest are dropped beyond this

  explicit report_outbox(const std::filesystem::path& dir) : file_(dir / "reports.pending") {}
  core::result<void> push(const std::string& json_line);
  // Whole lines only: a line cut by a power failure is skipped.
  std::vector<std::string> load() const;
  void clear();

 private:
  std::filesystem::path file_;
};

}  // namespace mallorn::agent
