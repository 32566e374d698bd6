#include "mallorn/agent/report_outbox.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "mallorn/core/io.hpp"

namespace mallorn::agent {

std::vector<std::string> report_outbox::load() const {
  std::vector<std::string> lines;
  std::ifstream in(file_);
  for (std::string line; std::getline(in, line);)
    if (nlohmann::json::accept(line)) lines.push_back(line);
  return lines;
}

core::result<void> report_outbox::push(const std::string& json_line) {
  auto lines = load();
  lines.push_back(json_line);
  if (lines.size() > max_reports) lines.erase(lines.begin(), lines.end() - max_reports);
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  auto r = core::write_file_atomic(file_, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  if (!r) return r.err().with("keeping an undelivered report");
  return {};
}

void report_outbox::clear() {
  std::error_code ec;
  std::filesystem::remove(file_, ec);
}

}  // namespace mallorn::agent
