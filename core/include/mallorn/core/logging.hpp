// spdlog set up for where Mallorn's daemons run (mallornd, mallorn-agent): under journald (JOURNAL_STREAM set) each line starts
// with its syslog priority ("<6>...") and carries no timestamp (journald adds one); on a
// terminal or a plain file, timestamps and levels as usual.
#pragma once
#include <string>

namespace mallorn::core {

// Returns false (and keeps "info") for an unknown level name.
// `program` names the default logger.
bool setup_logging(const std::string& program, const std::string& level);

}  // namespace mallorn::core
