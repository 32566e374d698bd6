// The index's rows for the store and the patch cache and device reports, written once in portable
// SQL over storage::sql_database (SQLite or PostgreSQL).
#include "mallorn/server/index_db.hpp"

#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server {
namespace {

using storage::sql_params;
using storage::sql_row;

core::model_format format_from_name(const std::string& s) {
  for (auto f : {core::model_format::tflite, core::model_format::gguf, core::model_format::onnx,
                 core::model_format::safetensors})
    if (s == core::format_id(f)) return f;
  return core::model_format::raw;
}

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }

patch_row patch_from(const sql_row& r) {
  patch_row p;
  p.id = r.text(0);
  p.source_sha256 = r.text(1);
  p.target_sha256 = r.text(2);
  p.profile = r.text(3);
  p.model = r.text(4);
  p.source_version = r.text(5);
  p.target_version = r.text(6);
  p.size = static_cast<std::uint64_t>(r.integer(7));
  p.is_signed = r.integer(8) != 0;
  p.created = r.integer(9);
  p.last_used = r.integer(10);
  p.hits = static_cast<std::uint64_t>(r.integer(11));
  p.bytes_served = static_cast<std::uint64_t>(r.integer(12));
  p.build_seconds = r.real(13);
  return p;
}

device_report report_from(const sql_row& r) {
  device_report d;
  d.device_id = r.text(0);
  d.model = r.text(1);
  d.from_version = r.text(2);
  d.to_version = r.text(3);
  d.state = r.text(4);
  d.error = r.text(5);
  d.bytes_downloaded = static_cast<std::uint64_t>(r.integer(6));
  d.client = r.text(7);
  d.received_at = r.integer(8);
  return d;
}

}  // namespace

std::vector<storage::migration> index_db::migrations() {
  // Version 1 is the schema of the first release (SQLite user_version 1); IF NOT EXISTS lets an
  // index created before migrations were versioned adopt the numbering unchanged.
  const std::string v1_common = R"sql(
CREATE TABLE IF NOT EXISTS models(
  path TEXT PRIMARY KEY, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL, sha256 TEXT NOT NULL,
  format TEXT NOT NULL, header_hash TEXT NOT NULL, tail_hash TEXT NOT NULL, combined_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patches(
  id TEXT PRIMARY KEY, source_sha256 TEXT NOT NULL, target_sha256 TEXT NOT NULL, profile TEXT NOT NULL,
  model TEXT NOT NULL, source_version TEXT NOT NULL, target_version TEXT NOT NULL, size BIGINT NOT NULL,
  is_signed BIGINT NOT NULL, created BIGINT NOT NULL, last_used BIGINT NOT NULL,
  hits BIGINT NOT NULL DEFAULT 0, bytes_served BIGINT NOT NULL DEFAULT 0, build_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
  UNIQUE(source_sha256, target_sha256, profile));
)sql";
  return {
      {1, "models, patches, reports",
       v1_common + R"sql(
CREATE TABLE IF NOT EXISTS reports(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, model TEXT NOT NULL, from_version TEXT NOT NULL,
  to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, bytes_downloaded BIGINT NOT NULL,
  client TEXT NOT NULL, received_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports(device_id, seq);
)sql",
       v1_common + R"sql(
CREATE TABLE IF NOT EXISTS reports(
  seq BIGSERIAL PRIMARY KEY, device_id TEXT NOT NULL, model TEXT NOT NULL, from_version TEXT NOT NULL,
  to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, bytes_downloaded BIGINT NOT NULL,
  client TEXT NOT NULL, received_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports(device_id, seq);
)sql"},
  };
}

core::result<std::unique_ptr<index_db>> index_db::open(const std::filesystem::path& file) {
  auto db = storage::open_sqlite(file);
  if (!db) return db.err();
  return open(std::move(*db));
}

core::result<std::unique_ptr<index_db>> index_db::open(std::unique_ptr<storage::sql_database> db,
                                                       std::vector<storage::migration> extra_migrations) {
  auto all = migrations();
  for (auto& m : extra_migrations) all.push_back(std::move(m));
  if (auto r = storage::apply_migrations(*db, std::move(all)); !r) return r.err();
  return std::unique_ptr<index_db>(new index_db(std::move(db)));
}

index_db::index_db(std::unique_ptr<storage::sql_database> db) : db_(std::move(db)) {}
index_db::~index_db() = default;

core::result<std::optional<indexed_model>> index_db::find_model(const std::string& path) {
  auto rows = db_->query(
      "SELECT size, mtime_ns, sha256, format, header_hash, tail_hash, combined_hash FROM models WHERE path=?", {path});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<indexed_model>{};
  const auto& r = rows->front();
  indexed_model m;
  m.path = path;
  m.size = static_cast<std::uint64_t>(r.integer(0));
  m.mtime_ns = r.integer(1);
  m.sha256 = r.text(2);
  m.fingerprint.format = format_from_name(r.text(3));
  m.fingerprint.file_size = m.size;
  m.fingerprint.header_hash = r.text(4);
  m.fingerprint.tail_hash = r.text(5);
  m.fingerprint.combined_hash = r.text(6);
  return std::optional<indexed_model>{std::move(m)};
}

core::result<void> index_db::upsert_model(const indexed_model& m) {
  return db_->exec(
      "INSERT INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) VALUES(?,?,?,?,?,?,?,?) "
      "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, sha256=excluded.sha256, "
      "format=excluded.format, header_hash=excluded.header_hash, tail_hash=excluded.tail_hash, "
      "combined_hash=excluded.combined_hash",
      {m.path, i64(m.size), m.mtime_ns, m.sha256, std::string(core::format_id(m.fingerprint.format)),
       m.fingerprint.header_hash, m.fingerprint.tail_hash, m.fingerprint.combined_hash});
}

core::result<void> index_db::retain_models(const std::vector<std::string>& paths) {
  return db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    auto rows = s.query("SELECT path FROM models", {});
    if (!rows) return rows.err();
    std::set<std::string> keep(paths.begin(), paths.end());
    for (const auto& r : *rows)
      if (!keep.count(r.text(0))) MALLORN_TRY(s.exec("DELETE FROM models WHERE path=?", {r.text(0)}));
    return {};
  });
}

core::result<std::vector<patch_row>> index_db::all_patches() {
  auto rows = db_->query(
      "SELECT id,source_sha256,target_sha256,profile,model,source_version,target_version,size,is_signed,"
      "created,last_used,hits,bytes_served,build_seconds FROM patches",
      {});
  if (!rows) return rows.err();
  std::vector<patch_row> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(patch_from(r));
  return out;
}

core::result<void> index_db::insert_patch(const patch_row& p) {
  // A row for the same pair and profile (an older build) is replaced: one patch per pair.
  return db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    MALLORN_TRY(s.exec("DELETE FROM patches WHERE (source_sha256=? AND target_sha256=? AND profile=?) OR id=?",
                       {p.source_sha256, p.target_sha256, p.profile, p.id}));
    return s.exec(
        "INSERT INTO patches(id,source_sha256,target_sha256,profile,model,source_version,target_version,size,"
        "is_signed,created,last_used,hits,bytes_served,build_seconds) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        {p.id, p.source_sha256, p.target_sha256, p.profile, p.model, p.source_version, p.target_version, i64(p.size),
         static_cast<std::int64_t>(p.is_signed), p.created, p.last_used, i64(p.hits), i64(p.bytes_served),
         p.build_seconds});
  });
}

core::result<void> index_db::delete_patch(const std::string& id) {
  return db_->exec("DELETE FROM patches WHERE id=?", {id});
}

core::result<void> index_db::add_patch_usage(const std::string& id, std::uint64_t hits, std::uint64_t bytes,
                                             std::int64_t last_used) {
  // CASE instead of MAX(a, b): PostgreSQL's MAX is only an aggregate.
  return db_->exec(
      "UPDATE patches SET hits=hits+?, bytes_served=bytes_served+?, "
      "last_used=CASE WHEN last_used > ? THEN last_used ELSE ? END WHERE id=?",
      {i64(hits), i64(bytes), last_used, last_used, id});
}

core::result<void> index_db::insert_report(const device_report& r) {
  return db_->exec(
      "INSERT INTO reports(device_id,model,from_version,to_version,state,error,bytes_downloaded,client,received_at) "
      "VALUES(?,?,?,?,?,?,?,?,?)",
      {r.device_id, r.model, r.from_version, r.to_version, r.state, r.error, i64(r.bytes_downloaded), r.client,
       r.received_at});
}

core::result<std::vector<device_report>> index_db::latest_reports(const std::string& device_id, std::size_t limit) {
  auto rows = db_->query(
      "SELECT device_id,model,from_version,to_version,state,error,bytes_downloaded,client,received_at "
      "FROM reports WHERE seq IN (SELECT MAX(seq) FROM reports WHERE (?='' OR device_id=?) "
      "GROUP BY device_id) ORDER BY seq DESC LIMIT ?",
      {device_id, device_id, static_cast<std::int64_t>(limit)});
  if (!rows) return rows.err();
  std::vector<device_report> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(report_from(r));
  return out;
}

core::result<std::vector<device_report>> index_db::device_history(const std::string& device_id, std::size_t limit) {
  auto rows = db_->query(
      "SELECT device_id,model,from_version,to_version,state,error,bytes_downloaded,client,received_at "
      "FROM reports WHERE device_id=? ORDER BY seq DESC LIMIT ?",
      {device_id, static_cast<std::int64_t>(limit)});
  if (!rows) return rows.err();
  std::vector<device_report> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(report_from(r));
  return out;
}

}  // namespace mallorn::server
