// Versioned schema migrations shared by both back-ends (see sql_database.hpp).
#include <algorithm>
#include <set>
#include <spdlog/spdlog.h>

#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::storage {
namespace {

// The advisory lock key replicas take while migrating ("mallorn" in ASCII).
constexpr const char* pg_lock_key = "30787890765066862";  // 0x6d616c6c6f726e; hex literals need PostgreSQL 16

core::result<std::set<int>> applied_versions(sql_session& s) {
  auto rows = s.query("SELECT version FROM schema_migrations", {});
  if (!rows) return rows.err();
  std::set<int> out;
  for (const auto& r : *rows) out.insert(static_cast<int>(r.integer(0)));
  return out;
}

}  // namespace

core::result<int> apply_migrations(sql_database& db, std::vector<migration> migrations) {
  std::sort(migrations.begin(), migrations.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < migrations.size(); ++i)
    if (migrations[i].version == migrations[i - 1].version)
      return core::make_error(core::errc::invalid_argument,
                              "schema migration " + std::to_string(migrations[i].version) + " is defined twice");
  const bool pg = db.dialect() == sql_dialect::postgres;
  int applied = 0;
  // One transaction for the whole run: on PostgreSQL the transaction-scoped advisory lock makes a
  // second replica wait here until the first has committed, then find nothing left to do; on
  // SQLite BEGIN IMMEDIATE does the same with the database's write lock.
  auto r = db.transaction([&](sql_session& s) -> core::result<void> {
    if (pg) MALLORN_TRY(s.exec(std::string("SELECT pg_advisory_xact_lock(") + pg_lock_key + ")", {}));
    MALLORN_TRY(s.exec_script(
        "CREATE TABLE IF NOT EXISTS schema_migrations(version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at BIGINT NOT NULL)"));
    auto done = applied_versions(s);
    if (!done) return done.err();
    for (const auto& m : migrations) {
      if (done->count(m.version)) continue;
      auto run = s.exec_script(pg ? m.postgres_sql : m.sqlite_sql);
      if (!run) return run.err().with("schema migration " + std::to_string(m.version) + " (" + m.name + ")");
      MALLORN_TRY(s.exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)",
                         {static_cast<std::int64_t>(m.version), m.name,
                          static_cast<std::int64_t>(std::time(nullptr))}));
      ++applied;
      spdlog::info("index: applied schema migration {} ({})", m.version, m.name);
    }
    return {};
  });
  if (!r) return r.err();
  return applied;
}

core::result<std::unique_ptr<sql_database>> open_database(const std::string& url, const std::filesystem::path& data_dir) {
  if (url.empty() || url == "sqlite:" || url == "sqlite://") return open_sqlite(data_dir / "index.sqlite");
  if (url.rfind("sqlite:", 0) == 0) {
    std::string path = url.substr(7);
    if (path.rfind("//", 0) == 0) path = path.substr(2);
    return open_sqlite(path);
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    return open_postgres(url);
  return core::make_error(core::errc::invalid_argument,
                          "--database: expected sqlite:[PATH] or postgresql://..., got a URL of another kind");
}

}  // namespace mallorn::server::storage
