#include "mallorn/server/index_db.hpp"

#include <sqlite3.h>

namespace mallorn::server {
namespace {

core::error db_error(sqlite3* db, const std::string& what) {
  return core::make_error(core::errc::io_error, "index database: " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement with positional binding; finalized on scope exit.
class statement {
 public:
  statement(sqlite3* db, const char* sql) : db_(db) { ok_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) == SQLITE_OK; }
  ~statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return ok_; }
  statement& bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++index_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  statement& bind(std::int64_t v) {
    sqlite3_bind_int64(stmt_, ++index_, v);
    return *this;
  }
  statement& bind(double v) {
    sqlite3_bind_double(stmt_, ++index_, v);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, anything else -> error.
  core::result<bool> step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return db_error(db_, "step");
  }
  std::string text(int col) const {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool ok_ = false;
  int index_ = 0;
};

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS models(
  path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
  format TEXT NOT NULL, header_hash TEXT NOT NULL, tail_hash TEXT NOT NULL, combined_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patches(
  id TEXT PRIMARY KEY, source_sha256 TEXT NOT NULL, target_sha256 TEXT NOT NULL, profile TEXT NOT NULL,
  model TEXT NOT NULL, source_version TEXT NOT NULL, target_version TEXT NOT NULL, size INTEGER NOT NULL,
  is_signed INTEGER NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0, bytes_served INTEGER NOT NULL DEFAULT 0, build_seconds REAL NOT NULL DEFAULT 0,
  UNIQUE(source_sha256, target_sha256, profile));
CREATE TABLE IF NOT EXISTS reports(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, model TEXT NOT NULL, from_version TEXT NOT NULL,
  to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, bytes_downloaded INTEGER NOT NULL,
  client TEXT NOT NULL, received_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports(device_id, seq);
PRAGMA user_version = 1;
)sql";

core::model_format format_from_name(const std::string& s) {
  for (auto f : {core::model_format::tflite, core::model_format::gguf, core::model_format::onnx,
                 core::model_format::safetensors})
    if (s == core::format_id(f)) return f;
  return core::model_format::raw;
}

}  // namespace

core::result<std::unique_ptr<index_db>> index_db::open(const std::filesystem::path& file) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<index_db> db(new index_db(raw));
  if (rc != SQLITE_OK) return db_error(raw, "opening " + file.string());
  sqlite3_busy_timeout(raw, 5000);
  // WAL: readers never block the writer; synchronous=NORMAL is durable across process crashes and
  // keeps the index consistent across power loss (a patch row lost then is rebuilt on demand).
  MALLORN_TRY(db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"));
  MALLORN_TRY(db->exec(schema));
  return db;
}

index_db::~index_db() { sqlite3_close_v2(db_); }

core::result<void> index_db::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return core::make_error(core::errc::io_error, "index database: " + text);
  }
  return {};
}

core::result<std::optional<indexed_model>> index_db::find_model(const std::string& path) {
  std::lock_guard lock(mutex_);
  statement st(db_, "SELECT size, mtime_ns, sha256, format, header_hash, tail_hash, combined_hash FROM models WHERE path=?");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(path);
  auto row = st.step();
  if (!row) return row.err();
  if (!*row) return std::optional<indexed_model>{};
  indexed_model m;
  m.path = path;
  m.size = static_cast<std::uint64_t>(st.integer(0));
  m.mtime_ns = st.integer(1);
  m.sha256 = st.text(2);
  m.fingerprint.format = format_from_name(st.text(3));
  m.fingerprint.file_size = m.size;
  m.fingerprint.header_hash = st.text(4);
  m.fingerprint.tail_hash = st.text(5);
  m.fingerprint.combined_hash = st.text(6);
  return std::optional<indexed_model>{std::move(m)};
}

core::result<void> index_db::upsert_model(const indexed_model& m) {
  std::lock_guard lock(mutex_);
  statement st(db_, "INSERT OR REPLACE INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) "
                    "VALUES(?,?,?,?,?,?,?,?)");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(m.path).bind(static_cast<std::int64_t>(m.size)).bind(m.mtime_ns).bind(m.sha256)
      .bind(std::string(core::format_id(m.fingerprint.format))).bind(m.fingerprint.header_hash)
      .bind(m.fingerprint.tail_hash).bind(m.fingerprint.combined_hash);
  auto r = st.step();
  if (!r) return r.err();
  return {};
}

core::result<void> index_db::retain_models(const std::vector<std::string>& paths) {
  std::lock_guard lock(mutex_);
  MALLORN_TRY(exec("BEGIN; CREATE TEMP TABLE IF NOT EXISTS keep(path TEXT PRIMARY KEY); DELETE FROM keep;"));
  for (const auto& p : paths) {
    statement st(db_, "INSERT OR IGNORE INTO keep(path) VALUES(?)");
    st.bind(p);
    if (auto r = st.step(); !r) {
      (void)exec("ROLLBACK");
      return r.err();
    }
  }
  MALLORN_TRY(exec("DELETE FROM models WHERE path NOT IN (SELECT path FROM keep); COMMIT;"));
  return {};
}

core::result<std::vector<patch_row>> index_db::all_patches() {
  std::lock_guard lock(mutex_);
  statement st(db_, "SELECT id,source_sha256,target_sha256,profile,model,source_version,target_version,size,is_signed,"
                    "created,last_used,hits,bytes_served,build_seconds FROM patches");
  if (!st.ok()) return db_error(db_, "prepare");
  std::vector<patch_row> rows;
  for (;;) {
    auto row = st.step();
    if (!row) return row.err();
    if (!*row) break;
    patch_row p;
    p.id = st.text(0);
    p.source_sha256 = st.text(1);
    p.target_sha256 = st.text(2);
    p.profile = st.text(3);
    p.model = st.text(4);
    p.source_version = st.text(5);
    p.target_version = st.text(6);
    p.size = static_cast<std::uint64_t>(st.integer(7));
    p.is_signed = st.integer(8) != 0;
    p.created = st.integer(9);
    p.last_used = st.integer(10);
    p.hits = static_cast<std::uint64_t>(st.integer(11));
    p.bytes_served = static_cast<std::uint64_t>(st.integer(12));
    p.build_seconds = st.real(13);
    rows.push_back(std::move(p));
  }
  return rows;
}

core::result<void> index_db::insert_patch(const patch_row& p) {
  std::lock_guard lock(mutex_);
  // A row for the same pair and profile (an older build) is replaced: one patch per pair.
  statement st(db_, "INSERT OR REPLACE INTO patches(id,source_sha256,target_sha256,profile,model,source_version,"
                    "target_version,size,is_signed,created,last_used,hits,bytes_served,build_seconds) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(p.id).bind(p.source_sha256).bind(p.target_sha256).bind(p.profile).bind(p.model).bind(p.source_version)
      .bind(p.target_version).bind(static_cast<std::int64_t>(p.size)).bind(static_cast<std::int64_t>(p.is_signed))
      .bind(p.created).bind(p.last_used).bind(static_cast<std::int64_t>(p.hits))
      .bind(static_cast<std::int64_t>(p.bytes_served)).bind(p.build_seconds);
  auto r = st.step();
  if (!r) return r.err();
  return {};
}

core::result<void> index_db::delete_patch(const std::string& id) {
  std::lock_guard lock(mutex_);
  statement st(db_, "DELETE FROM patches WHERE id=?");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(id);
  auto r = st.step();
  if (!r) return r.err();
  return {};
}

core::result<void> index_db::add_patch_usage(const std::string& id, std::uint64_t hits, std::uint64_t bytes,
                                             std::int64_t last_used) {
  std::lock_guard lock(mutex_);
  statement st(db_, "UPDATE patches SET hits=hits+?, bytes_served=bytes_served+?, last_used=MAX(last_used,?) WHERE id=?");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(static_cast<std::int64_t>(hits)).bind(static_cast<std::int64_t>(bytes)).bind(last_used).bind(id);
  auto r = st.step();
  if (!r) return r.err();
  return {};
}

core::result<void> index_db::insert_report(const device_report& r) {
  std::lock_guard lock(mutex_);
  statement st(db_, "INSERT INTO reports(device_id,model,from_version,to_version,state,error,bytes_downloaded,client,"
                    "received_at) VALUES(?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(r.device_id).bind(r.model).bind(r.from_version).bind(r.to_version).bind(r.state).bind(r.error)
      .bind(static_cast<std::int64_t>(r.bytes_downloaded)).bind(r.client).bind(r.received_at);
  auto s = st.step();
  if (!s) return s.err();
  return {};
}

core::result<std::vector<device_report>> index_db::latest_reports(const std::string& device_id, std::size_t limit) {
  std::lock_guard lock(mutex_);
  statement st(db_, "SELECT device_id,model,from_version,to_version,state,error,bytes_downloaded,client,received_at "
                    "FROM reports WHERE seq IN (SELECT MAX(seq) FROM reports WHERE (?1='' OR device_id=?1) "
                    "GROUP BY device_id) ORDER BY seq DESC LIMIT ?2");
  if (!st.ok()) return db_error(db_, "prepare");
  st.bind(device_id).bind(static_cast<std::int64_t>(limit));
  std::vector<device_report> out;
  for (;;) {
    auto row = st.step();
    if (!row) return row.err();
    if (!*row) break;
    device_report r;
    r.device_id = st.text(0);
    r.model = st.text(1);
    r.from_version = st.text(2);
    r.to_version = st.text(3);
    r.state = st.text(4);
    r.error = st.text(5);
    r.bytes_downloaded = static_cast<std::uint64_t>(st.integer(6));
    r.client = st.text(7);
    r.received_at = st.integer(8);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace mallorn::server
