#include "cli_output.hpp"

#include <iostream>

namespace mallorn::cli {

int report_error(const core::error& e, bool json, nlohmann::json extra) {
  // stderr always gets the line, so a --json caller that only logs stderr still sees why.
  std::cerr << "mallorn: " << e.what() << "\n";
  if (json) {
    extra["ok"] = false;
    extra["error"] = {{"code", core::errc_name(e.code)}, {"code_num", static_cast<int>(e.code)}, {"message", e.message}};
    print_json(extra);
  }
  return exit_failed;
}

int usage_error(const std::string& message, const std::string& command, bool json) {
  std::cerr << "mallorn: " << message << "\n"
            << "Try 'mallorn " << (command.empty() ? "" : command + " ") << "--help'.\n";
  if (json) print_json({{"ok", false}, {"error", {{"code", "Usage"}, {"code_num", exit_usage}, {"message", message}}}});
  return exit_usage;
}

// error_handler::replace: model and tensor names are not guaranteed UTF-8, and a dump() that
// throws would turn a report into a crash.
void print_json(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

}  // namespace mallorn::cli
