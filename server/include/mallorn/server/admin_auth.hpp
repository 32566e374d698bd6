// Who may do what on the admin API: named bearer tokens, each with one scope.
//   read   — the views: GET of /admin/... (devices, builds, rollouts, groups, audit)
//   deploy — what changes which model devices get: uploads, rescans, patch builds, rollouts, groups
//   admin  — what changes who is trusted: device admission, tokens, keyrings
// A scope includes the ones before it. The server keeps only each token's SHA-256.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::server {

enum class admin_scope { read = 0, deploy = 1, admin = 2 };
const char* admin_scope_name(admin_scope s);
std::optional<admin_scope> parse_admin_scope(const std::string& name);

struct admin_credential {
  std::string name;  // the actor in the audit log
  admin_scope scope = admin_scope::admin;
  std::array<std::uint8_t, 32> token_sha256{};
};

// The credential for a plain token (the --admin-token-file one is named "admin", scope admin).
admin_credential credential_for_token(const std::string& name, admin_scope scope, const std::string& token);

// --admin-tokens FILE: {"tokens": [{"name": "ci", "scope": "deploy", "sha256": "<64 hex>"}, ...]}
// ("token": "<plain>" instead of "sha256" is accepted, with a warning). Names are unique,
// [A-Za-z0-9._-]{1,64}.
core::result<std::vector<admin_credential>> load_admin_tokens(const std::filesystem::path& file);

// The credential whose token this is, compared in constant time per credential; nullptr if none.
const admin_credential* find_credential(const std::vector<admin_credential>& all, const std::string& presented);

// The scope a request needs, from its method and path (segments after the first '/').
admin_scope required_scope(const std::string& method, const std::vector<std::string>& segments);

}  // namespace mallorn::server
