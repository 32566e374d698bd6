// mallornd's admin API from the CLI.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

// Sends the request; prints the error ("mallorn fleet: ...") and returns nullopt unless the
// answer is 2xx JSON.
std::optional<nlohmann::json> fleet_call(const fleet_server& s, const std::string& method, const std::string& path,
                                         const std::string& body = {});

// cmd_fleet_identity.cpp: `devices admit|reject|revoke|pending|enrolled` and `audit`.
bool is_admission_command(const std::string& word);
int fleet_admission(const fleet_server& s, const std::vector<std::string>& positional, bool as_json);
int fleet_audit(const fleet_server& s, const std::optional<std::string>& actor, const std::optional<std::string>& limit,
                bool as_json);

std::optional<fleet_reply> fleet_request(const fleet_server& server, const std::string& method, const std::string& path,
                                         const std::string& body, std::string& error);

}  // namespace mallorn::cli
