// mallornd's admin API from the CLI.
#pragma once
#include <optional>
#include <string>

namespace mallorn::cli {

struct fleet_server {
  std::string url;    // --server / MALLORN_SERVER
  std::string token;  // --token-file / MALLORN_TOKEN
  std::string actor;  // recorded in the rollout journal (default: $USER)
};

struct fleet_reply {
  unsigned status = 0;
  std::string body;
};

std::optional<fleet_reply> fleet_request(const fleet_server& server, const std::string& method, const std::string& path,
                                         const std::string& body, std::string& error);

}  // namespace mallorn::cli
