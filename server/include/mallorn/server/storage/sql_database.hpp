// The one door to the index's database. Everything the server persists (model fingerprints,
// version numbers, patch rows, build jobs, device reports, rollouts, groups, identities, the audit
// log) is written once, as SQL that both back-ends understand, against this interface:
//   - `sqlite:` (default): one file in the data directory, one connection, WAL;
//   - `postgresql://...`: a pool of libpq connections shared by several replicas.
// Portable SQL here means: `?` placeholders (rewritten to $n for PostgreSQL), `ON CONFLICT ...
// DO NOTHING/DO UPDATE`, `RETURNING`, BIGINT/TEXT/DOUBLE PRECISION columns; DDL that differs
// (auto-increment keys) lives in the migrations, one text per dialect.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::server::storage {

enum class sql_dialect { sqlite, postgres };

using sql_value = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

// One result row. Columns come back typed from SQLite and as text from PostgreSQL; the accessors
// convert, so callers read both the same way.
class sql_row {
 public:
  explicit sql_row(std::vector<sql_value> cols) : cols_(std::move(cols)) {}
  std::size_t size() const { return cols_.size(); }
  bool is_null(std::size_t i) const;
  std::string text(std::size_t i) const;
  std::int64_t integer(std::size_t i) const;
  double real(std::size_t i) const;

 private:
  std::vector<sql_value> cols_;
};

using sql_rows = std::vector<sql_row>;
using sql_params = std::vector<sql_value>;

// One connection, used by one thread at a time (inside database::transaction, or for one call).
class sql_session {
 public:
  virtual ~sql_session() = default;
  virtual sql_dialect dialect() const = 0;
  // One statement with `?` placeholders. Errors: errc::io_error with the database's message.
  virtual core::result<sql_rows> query(std::string_view sql, const sql_params& params = {}) = 0;
  // Several statements without parameters (DDL, migrations).
  virtual core::result<void> exec_script(std::string_view sql) = 0;

  core::result<void> exec(std::string_view sql, const sql_params& params = {}) {
    auto r = query(sql, params);
    if (!r) return r.err();
    return {};
  }
};

class sql_database {
 public:
  virtual ~sql_database() = default;
  virtual sql_dialect dialect() const = 0;
  // A human description without secrets (passwords are never printed), for logs and /healthz.
  virtual std::string describe() const = 0;

  // Auto-commit statement on any free connection.
  virtual core::result<sql_rows> query(std::string_view sql, const sql_params& params = {}) = 0;
  core::result<void> exec(std::string_view sql, const sql_params& params = {}) {
    auto r = query(sql, params);
    if (!r) return r.err();
    return {};
  }
  // Runs `body` in one transaction on one connection: committed when body returns success,
  // rolled back when it returns an error or throws (the exception is rethrown).
  virtual core::result<void> transaction(const std::function<core::result<void>(sql_session&)>& body) = 0;
  // Can this replica reach its database right now? (for /healthz)
  virtual core::result<void> ping() = 0;
};

// `url`: "" or "sqlite:" -> <data_dir>/index.sqlite; "sqlite:/path/file" -> that file;
// "postgresql://..." or "postgres://..." -> PostgreSQL.
core::result<std::unique_ptr<sql_database>> open_database(const std::string& url, const std::filesystem::path& data_dir);

// Back-ends (open_database picks one).
core::result<std::unique_ptr<sql_database>> open_sqlite(const std::filesystem::path& file);
// A pool of up to `max_connections` libpq connections; connects once to check the URL.
core::result<std::unique_ptr<sql_database>> open_postgres(const std::string& url, std::size_t max_connections = 8);

// ---- schema migrations ----------------------------------------------------------------------
// Each feature (index, builds, fleet, identity...) contributes its own numbered migrations; the
// numbers are globally unique (ranges per feature: index 1-99, builds 100-199, fleet 200-299,
// identity 300-399, audit 400-499) so features can be added without touching each other's lists.
struct migration {
  int version = 0;
  std::string name;
  std::string sqlite_sql, postgres_sql;  // scripts; may be the same text
};

// Applies, in version order, every migration not yet recorded in schema_migrations, each in its
// own transaction. Replicas starting together take turns: PostgreSQL holds an advisory lock for
// the whole run; SQLite takes its write lock (BEGIN IMMEDIATE). Returns how many were applied.
core::result<int> apply_migrations(sql_database& db, std::vector<migration> migrations);

}  // namespace mallorn::server::storage
