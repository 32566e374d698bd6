// The attributes a device sends with check-update ("tags"), which the server's rollout groups
// select on: the config's "tags" object, overridden by what the optional "tags_command" prints
// (one JSON object of string values on stdout, within 10 s and 64 KiB).
#pragma once
#include <map>
#include <string>

#include "mallorn/agent/agent_config.hpp"

namespace mallorn::agent {

// A failing command is logged and its tags are left out; the config's tags are still sent.
std::map<std::string, std::string> collect_tags(const agent_config& cfg);

}  // namespace mallorn::agent
