// The SQLite back-end: one connection (WAL) behind a mutex, prepared statements cached by text.
// Every statement the server runs is short; a build or a hash never runs while the mutex is held.
#include <sqlite3.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::storage {
namespace {

// SQLITE_FULL and I/O errors carry their errno, so callers tell a full disk (read-only mode,
// 503 disk_full) from a broken statement.
core::error sqlite_error(sqlite3* db, const std::string& what) {
  auto e = core::make_error(core::errc::io_error, "index database: " + what + ": " + sqlite3_errmsg(db));
  const int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_FULL) e.sys_errno = ENOSPC;
  else if (code == SQLITE_IOERR && sqlite3_system_errno(db)) e.sys_errno = sqlite3_system_errno(db);
  // Growing the "-shm" file writes into a hole: no room on the disk, whatever errno was last.
  else if (sqlite3_extended_errcode(db) == SQLITE_IOERR_SHMSIZE) e.sys_errno = ENOSPC;
  else if (code == SQLITE_IOERR) e.sys_errno = EIO;
  return e;
}

class sqlite_session final : public sql_session {
 public:
  explicit sqlite_session(sqlite3* db) : db_(db) {}
  ~sqlite_session() override {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st);
  }
  sql_dialect dialect() const override { return sql_dialect::sqlite; }

  core::result<sql_rows> query(std::string_view sql, const sql_params& params) override {
    sqlite3_stmt* st = nullptr;
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) {
      st = it->second;
    } else {
      if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &st, nullptr) != SQLITE_OK)
        return sqlite_error(db_, "prepare '" + std::string(sql.substr(0, 60)) + "'");
      // A bounded cache: the server runs a fixed set of statements; anything beyond is ad hoc.
      if (cache_.size() < 256) cache_.emplace(std::string(sql), st);
    }
    struct finish {
      sqlite3_stmt* st;
      bool cached;
      ~finish() {
        if (cached) {
          sqlite3_reset(st);
          sqlite3_clear_bindings(st);
        } else {
          sqlite3_finalize(st);
        }
      }
    } done{st, cache_.count(std::string(sql)) > 0};
    int index = 0;
    for (const auto& p : params) {
      ++index;
      if (auto s = std::get_if<std::string>(&p))
        sqlite3_bind_text(st, index, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      else if (auto n = std::get_if<std::int64_t>(&p))
        sqlite3_bind_int64(st, index, *n);
      else if (auto d = std::get_if<double>(&p))
        sqlite3_bind_double(st, index, *d);
      else
        sqlite3_bind_null(st, index);
    }
    sql_rows rows;
    for (;;) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return sqlite_error(db_, "step");
      int n = sqlite3_column_count(st);
      std::vector<sql_value> cols;
      cols.reserve(static_cast<std::size_t>(n));
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_INTEGER: cols.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(st, c))); break;
          case SQLITE_FLOAT: cols.emplace_back(sqlite3_column_double(st, c)); break;
          case SQLITE_NULL: cols.emplace_back(nullptr); break;
          default: {
            auto p = sqlite3_column_text(st, c);
            cols.emplace_back(std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
          }
        }
      }
      rows.emplace_back(std::move(cols));
    }
    return rows;
  }

  core::result<void> exec_script(std::string_view sql) override {
    char* msg = nullptr;
    if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      sqlite3_free(msg);
      return sqlite_error(db_, "running '" + std::string(sql.substr(0, 60)) + "'");
    }
    return {};
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class sqlite_database final : public sql_database {
 public:
  sqlite_database(sqlite3* db, std::filesystem::path file)
      : db_(db), file_(std::move(file)), session_(std::make_unique<sqlite_session>(db)) {}
  ~sqlite_database() override {
    session_.reset();  // cached statements are finalized before the connection closes
    sqlite3_close_v2(db_);
  }
  sql_dialect dialect() const override { return sql_dialect::sqlite; }
  std::string describe() const override { return "sqlite:" + file_.string(); }

  core::result<sql_rows> query(std::string_view sql, const sql_params& params) override {
    std::lock_guard lock(mutex_);
    return session_->query(sql, params);
  }

  core::result<void> transaction(const std::function<core::result<void>(sql_session&)>& body) override {
    std::lock_guard lock(mutex_);
    // IMMEDIATE: take the write lock now, so two processes on one file never deadlock upgrading.
    MALLORN_TRY(session_->exec_script("BEGIN IMMEDIATE"));
    core::result<void> r = core::make_error(core::errc::io_error, "transaction body did not run");
    try {
      r = body(*session_);
    } catch (...) {
      (void)session_->exec_script("ROLLBACK");
      throw;
    }
    if (!r) {
      (void)session_->exec_script("ROLLBACK");
      return r;
    }
    if (auto c = session_->exec_script("COMMIT"); !c) {
      (void)session_->exec_script("ROLLBACK");
      return c;
    }
    return {};
  }

  core::result<void> ping() override {
    auto r = query("SELECT 1", {});
    if (!r) return r.err();
    return {};
  }

 private:
  sqlite3* db_;
  std::filesystem::path file_;
  std::recursive_mutex mutex_;  // recursive: a transaction body may call query() on this thread
  std::unique_ptr<sqlite_session> session_;
};

}  // namespace

namespace {

core::result<std::unique_ptr<sql_database>> open_sqlite_with(const std::filesystem::path& file, bool exclusive) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    auto e = sqlite_error(raw, "opening " + file.string());
    sqlite3_close_v2(raw);
    return e;
  }
  sqlite3_busy_timeout(raw, 5000);
  std::unique_ptr<sql_database> db(new sqlite_database(raw, file));
  // WAL: readers never block the writer; synchronous=NORMAL is durable across process crashes and
  // keeps the index consistent across power loss (a patch row lost then is rebuilt on demand).
  // A small WAL (checkpoint every 128 pages, truncated back to 1 MiB): the default lets it grow to
  // 4 MB, which alone filled a small data disk.
  // Exclusive locking keeps the WAL index in memory instead of the "-shm" file (see open_sqlite).
  const std::string pragmas = std::string(exclusive ? "PRAGMA locking_mode=EXCLUSIVE; " : "") +
                              "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                              "PRAGMA wal_autocheckpoint=128; PRAGMA journal_size_limit=1048576;";
  char* msg = nullptr;
  if (sqlite3_exec(raw, pragmas.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    sqlite3_free(msg);
    return sqlite_error(raw, "opening " + file.string());
  }
  return db;
}

}  // namespace

core::result<std::unique_ptr<sql_database>> open_sqlite(const std::filesystem::path& file) {
  auto db = open_sqlite_with(file, false);
  if (db || (db.err().sys_errno != ENOSPC && db.err().sys_errno != EDQUOT)) return db;
  // A full disk has no room for the WAL's shared-memory file, so the index cannot even be read.
  // In exclusive locking mode SQLite keeps that index in the heap: mallornd starts and serves
  // (read-only mode, disk_guard.hpp), and writes again once space returns. The price, until the
  // next start: no other process can open the file.
  spdlog::critical("index database {}: {}; opened in exclusive mode (no other process can read it until mallornd "
                   "restarts)",
                   file.string(), db.err().what());
  return open_sqlite_with(file, true);
}

}  // namespace mallorn::server::storage
