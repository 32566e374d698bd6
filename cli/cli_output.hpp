// How the CLI reports: human text or one JSON object on stdout; errors name the seed's taxonomy
// (SourceHashMismatch, InvalidPatch, ...) and map to exit codes.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;  // the operation failed (bad patch, wrong model, I/O, ...)
inline constexpr int exit_usage = 2;   // the command line was wrong

// Prints "mallorn: <ErrcName>: message" on stderr and, with --json, also
// {"ok":false,"error":{"code","code_num","message"},...extra} on stdout. Returns exit_failed.
int report_error(const core::error& e, bool json, nlohmann::json extra = nlohmann::json::object());
// Prints a usage error (code "Usage", code_num 2 in JSON) and returns exit_usage.
int usage_error(const std::string& message, const std::string& command, bool json);
void print_json(const nlohmann::json& j);

}  // namespace mallorn::cli
