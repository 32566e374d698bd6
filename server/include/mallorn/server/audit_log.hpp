// The audit log: every admin action (upload, rescan, create-patch, rollout and group changes,
// device admission, keyring and token changes) with time, actor (the admin token's name), its
// scope, action, target and the answer's status. Append-only: the tables refuse UPDATE and DELETE
// (a trigger on both back-ends), and the server has no route that removes an entry.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server {

struct audit_entry {
  std::int64_t seq = 0;  // assigned by the database, increasing
  std::int64_t at = 0;   // unix seconds
  std::string actor, scope, action, target, client;
  unsigned status = 0;
};

class audit_log {
 public:
  explicit audit_log(storage::sql_database& db) : db_(db) {}
  static std::vector<storage::migration> migrations();

  core::result<void> record(const audit_entry& e);
  // Newest first; `before_seq` > 0 pages back from there. At most `limit` (capped at 1000).
  core::result<std::vector<audit_entry>> list(std::size_t limit, std::int64_t before_seq = 0, const std::string& actor = {});

  // Field bounds: a target is a request path, cut (with "…") past this many bytes.
  static constexpr std::size_t max_field = 512;

 private:
  storage::sql_database& db_;
};

}  // namespace mallorn::server
