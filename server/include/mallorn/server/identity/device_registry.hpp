// Enrolled devices, their admission state and their short-lived bearer tokens (Mender's model:
// a device key, admission by an operator, then a token). Everything lives in the index database
// (migration 300), so replicas sharing PostgreSQL agree, and a revoked device's tokens stop
// working on every replica at once. Tokens are stored as their SHA-256 only.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"
#include "mallorn/server/identity/device_requests.hpp"
#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::identity {

enum class device_state { pending, admitted, rejected, revoked };
enum class admission_action { admit, reject, revoke };
const char* device_state_name(device_state s);
std::optional<device_state> parse_device_state(std::string_view name);
std::optional<admission_action> parse_admission_action(std::string_view name);

// The admission state machine (one table, docs/security.md): nullopt = not allowed. Repeating an
// action (admit an admitted device) is allowed and changes nothing. `revoked` is final: a device
// whose key leaked gets a new id and key.
std::optional<device_state> next_state(device_state from, admission_action action);

struct device_identity {
  std::string device_id;
  core::ed25519_public_key public_key{};
  device_state state = device_state::pending;
  std::string tags_json, client;
  std::int64_t created_at = 0, updated_at = 0;
};

// --device-preauth FILE: one device per line, "ID" (admitted with whatever key it enrolls first)
// or "ID BASE64KEY" (admitted only with that key); '#' starts a comment.
struct preauth_entry {
  std::string device_id;
  std::optional<core::ed25519_public_key> public_key;
};
core::result<std::vector<preauth_entry>> load_preauth_file(const std::filesystem::path& file);

struct enrollment_limits {
  std::size_t max_pending = 10000;           // pending enrollments in total
  std::size_t max_pending_per_address = 32;  // ... from one client address (IPv4, IPv6 /64)
};

enum class enroll_outcome {
  created,                // a new row (pending, or admitted by the pre-authorised list)
  unchanged,              // the same key enrolled again: its current state
  key_mismatch,           // the id is taken by another key
  preauth_key_mismatch,   // the pre-authorised list names another key for this id
  too_many_pending,       // the global cap
  too_many_from_address,  // the per-address cap
};

struct enroll_result {
  enroll_outcome outcome = enroll_outcome::created;
  device_state state = device_state::pending;
};

enum class change_outcome { done, unknown_device, not_allowed };
struct change_result {
  change_outcome outcome = change_outcome::done;
  device_state state = device_state::pending;  // after the change (or the current one)
};

enum class token_outcome { issued, not_admitted, replayed };

// Who holds a live token, and until when (unix seconds).
struct token_holder {
  std::string device_id;
  std::int64_t expires_at = 0;
};

class device_registry {
 public:
  device_registry(storage::sql_database& db, enrollment_limits limits, std::vector<preauth_entry> preauth)
      : db_(db), limits_(limits), preauth_(std::move(preauth)) {}
  static std::vector<storage::migration> migrations();

  core::result<enroll_result> enroll(const enroll_request& r, const std::string& client, const std::string& client_key,
                                     std::int64_t now);
  core::result<std::optional<device_identity>> find(const std::string& device_id);
  // Oldest first; `state` filters. At most `limit` (capped at 1000).
  core::result<std::vector<device_identity>> list(std::optional<device_state> state, std::size_t limit);
  // Leaving `admitted` deletes the device's tokens in the same transaction.
  core::result<change_result> change(const std::string& device_id, admission_action action, std::int64_t now);

  // Records `nonce` (kept until `nonce_expires`) and stores the token's SHA-256, if the device is
  // still admitted and the nonce is new for it. A device keeps at most max_tokens live tokens.
  core::result<token_outcome> issue_token(const std::string& device_id, const std::string& nonce,
                                          std::int64_t nonce_expires, const std::string& token_sha256_hex,
                                          std::int64_t now, std::int64_t expires_at);
  // The admitted device holding this unexpired token.
  core::result<std::optional<std::string>> device_for_token(const std::string& token_sha256_hex, std::int64_t now);
  // The same with the token's expiry (credential_cache.hpp keeps it to refuse the token on time).
  core::result<std::optional<token_holder>> find_token(const std::string& token_sha256_hex, std::int64_t now);

  static constexpr std::int64_t max_tokens = 4;

 private:
  const preauth_entry* preauthorised(const std::string& device_id) const;
  storage::sql_database& db_;
  enrollment_limits limits_;
  std::vector<preauth_entry> preauth_;
};

}  // namespace mallorn::server::identity
