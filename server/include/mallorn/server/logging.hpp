// spdlog set up for where mallornd runs: under journald (JOURNAL_STREAM set) each line starts
// with its syslog priority ("<6>...") and carries no timestamp (journald adds one); on a
// terminal or a plain file, timestamps and levels as usual.
#pragma once
#include <string>

namespace mallorn::server {

// Returns false (and keeps "info") for an unknown level name.
bool setup_logging(const std::string& level);

}  // namespace mallorn::server
