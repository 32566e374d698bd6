// The index's rows for the store and the patch cache and device reports, written once in portable
// SQL over storage::sql_database (SQLite or PostgreSQL).
#include "mallorn/server/index_db.hpp"

#include <algorithm>
#include <ctime>

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
  p.target_number = static_cast<std::uint64_t>(r.integer(14));
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

const char* const device_state_sql = R"sql(
CREATE TABLE device_state(
  device_id TEXT NOT NULL, model TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL,
  state TEXT NOT NULL, error TEXT NOT NULL, bytes_downloaded BIGINT NOT NULL, client TEXT NOT NULL,
  tags_json TEXT NOT NULL DEFAULT '{}', last_seen BIGINT NOT NULL, PRIMARY KEY(device_id, model));
CREATE INDEX device_state_by_seen ON device_state(last_seen);
CREATE INDEX device_state_by_model_state ON device_state(model, state);
CREATE INDEX reports_by_time ON reports(received_at);
INSERT INTO device_state(device_id, model, from_version, to_version, state, error, bytes_downloaded, client, last_seen)
  SELECT device_id, model, from_version, to_version, state, error, bytes_downloaded, client, received_at FROM reports
  WHERE seq IN (SELECT MAX(seq) FROM reports GROUP BY device_id, model);
)sql";

const char* const version_numbers_sql = R"sql(
CREATE TABLE version_numbers(
  model TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, number BIGINT NOT NULL,
  first_seen BIGINT NOT NULL, PRIMARY KEY(model, version));
CREATE TABLE version_counters(model TEXT PRIMARY KEY, last_number BIGINT NOT NULL);
ALTER TABLE patches ADD COLUMN target_number BIGINT NOT NULL DEFAULT 0;
)sql";

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
  static const char* const patch_pins_sql =
      "CREATE TABLE patch_pins(patch_id TEXT NOT NULL, owner TEXT NOT NULL, until BIGINT NOT NULL, "
      "PRIMARY KEY(patch_id, owner))";
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
      // Stable version numbers (issue 11): a version keeps the number it got when first seen; a
      // model's counter only grows, so a deleted number is never handed out again. Patches
      // remember the number written into their header, so a stale one is rebuilt.
      {2, "stable version numbers", version_numbers_sql, version_numbers_sql},
      // Bounded report storage (issue 11): the latest state per device and model in its own
      // table, so the history can be capped without losing any device.
      {3, "device_state", device_state_sql, device_state_sql},
      // Build jobs shared by replicas (issue 13): one row per pair, claimed with a lease.
      {100, "build_jobs",
       "CREATE TABLE build_jobs(job_key TEXT PRIMARY KEY, owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0, "
       "state TEXT NOT NULL, updated BIGINT NOT NULL)",
       "CREATE TABLE build_jobs(job_key TEXT PRIMARY KEY, owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0, "
       "state TEXT NOT NULL, updated BIGINT NOT NULL)"},
      // Patches in use (downloads in progress) on any replica, so another one does not evict them.
      {101, "patch_pins", patch_pins_sql, patch_pins_sql},
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
      "created,last_used,hits,bytes_served,build_seconds,target_number FROM patches",
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
        "is_signed,created,last_used,hits,bytes_served,build_seconds,target_number) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        {p.id, p.source_sha256, p.target_sha256, p.profile, p.model, p.source_version, p.target_version, i64(p.size),
         static_cast<std::int64_t>(p.is_signed), p.created, p.last_used, i64(p.hits), i64(p.bytes_served),
         p.build_seconds, i64(p.target_number)});
  });
}

core::result<std::optional<patch_row>> index_db::find_patch(const std::string& source_sha256,
                                                          const std::string& target_sha256, const std::string& profile) {
  auto rows = db_->query(
      "SELECT id,source_sha256,target_sha256,profile,model,source_version,target_version,size,is_signed,"
      "created,last_used,hits,bytes_served,build_seconds,target_number FROM patches "
      "WHERE source_sha256=? AND target_sha256=? AND profile=?",
      {source_sha256, target_sha256, profile});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<patch_row>{};
  return std::optional<patch_row>{patch_from(rows->front())};
}

core::result<std::optional<patch_row>> index_db::find_patch_by_id(const std::string& id) {
  auto rows = db_->query(
      "SELECT id,source_sha256,target_sha256,profile,model,source_version,target_version,size,is_signed,"
      "created,last_used,hits,bytes_served,build_seconds,target_number FROM patches WHERE id=?",
      {id});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<patch_row>{};
  return std::optional<patch_row>{patch_from(rows->front())};
}

core::result<void> index_db::pin_patch(const std::string& id, const std::string& owner, std::int64_t until) {
  return db_->exec("INSERT INTO patch_pins(patch_id, owner, until) VALUES(?,?,?) "
                   "ON CONFLICT(patch_id, owner) DO UPDATE SET until=excluded.until",
                   {id, owner, until});
}

core::result<bool> index_db::delete_patch_unless_pinned(const std::string& id, std::int64_t now) {
  MALLORN_TRY(db_->exec("DELETE FROM patch_pins WHERE until < ?", {now}));
  // One statement: a pin committed before it runs keeps the row (and so the file).
  auto rows = db_->query(
      "DELETE FROM patches WHERE id=? AND NOT EXISTS (SELECT 1 FROM patch_pins WHERE patch_id=? AND until >= ?) "
      "RETURNING id",
      {id, id, now});
  if (!rows) return rows.err();
  return !rows->empty();
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
  const std::int64_t keep = static_cast<std::int64_t>(std::max<std::size_t>(1, limits_.per_device));
  return db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    MALLORN_TRY(s.exec(
        "INSERT INTO reports(device_id,model,from_version,to_version,state,error,bytes_downloaded,client,received_at) "
        "VALUES(?,?,?,?,?,?,?,?,?)",
        {r.device_id, r.model, r.from_version, r.to_version, r.state, r.error, i64(r.bytes_downloaded), r.client,
         r.received_at}));
    // A report without a model continues the device's most recent state (the update it is in).
    std::string model = r.model;
    if (model.empty()) {
      auto last = s.query("SELECT model FROM device_state WHERE device_id=? ORDER BY last_seen DESC, model LIMIT 1",
                          {r.device_id});
      if (!last) return last.err();
      if (!last->empty()) model = last->front().text(0);
    }
    MALLORN_TRY(s.exec(
        "INSERT INTO device_state(device_id,model,from_version,to_version,state,error,bytes_downloaded,client,"
        "tags_json,last_seen) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(device_id, model) DO UPDATE SET "
        "from_version=excluded.from_version, to_version=excluded.to_version, state=excluded.state, "
        "error=excluded.error, bytes_downloaded=excluded.bytes_downloaded, client=excluded.client, "
        "tags_json=CASE WHEN ?='' THEN device_state.tags_json ELSE excluded.tags_json END, "
        "last_seen=excluded.last_seen",
        {r.device_id, model, r.from_version, r.to_version, r.state, r.error, i64(r.bytes_downloaded), r.client,
         r.tags_json.empty() ? std::string("{}") : r.tags_json, r.received_at, r.tags_json}));
    // The device's history beyond its cap (the newest `keep` rows stay).
    return s.exec(
        "DELETE FROM reports WHERE device_id=? AND seq <= "
        "(SELECT seq FROM reports WHERE device_id=? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        {r.device_id, r.device_id, keep});
  });
}

core::result<std::uint64_t> index_db::prune_reports(std::int64_t now) {
  std::uint64_t deleted = 0;
  auto count = [&](storage::sql_session& s, const char* table) -> core::result<std::int64_t> {
    auto rows = s.query(std::string("SELECT COUNT(*) FROM ") + table, {});
    if (!rows) return rows.err();
    return rows->front().integer(0);
  };
  auto r = db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    auto before_reports = count(s, "reports");
    auto before_devices = count(s, "device_state");
    if (!before_reports) return before_reports.err();
    if (!before_devices) return before_devices.err();
    if (limits_.retention_s > 0) {
      MALLORN_TRY(s.exec("DELETE FROM reports WHERE received_at < ?", {now - limits_.retention_s}));
      MALLORN_TRY(s.exec("DELETE FROM device_state WHERE last_seen < ?", {now - limits_.retention_s}));
    }
    const auto cap = static_cast<std::int64_t>(std::max<std::size_t>(1, limits_.total));
    MALLORN_TRY(s.exec("DELETE FROM reports WHERE seq <= (SELECT seq FROM reports ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                       {cap}));
    // Devices seen least recently go first (spoofed ids cannot grow the table without bound).
    auto devices = count(s, "device_state");
    if (!devices) return devices.err();
    if (*devices > cap)
      MALLORN_TRY(s.exec("DELETE FROM device_state WHERE (device_id, model) IN (SELECT device_id, model FROM "
                         "device_state ORDER BY last_seen ASC, device_id ASC LIMIT ?)",
                         {*devices - cap}));
    auto after_reports = count(s, "reports");
    auto after_devices = count(s, "device_state");
    if (!after_reports) return after_reports.err();
    if (!after_devices) return after_devices.err();
    deleted = static_cast<std::uint64_t>(*before_reports - *after_reports + *before_devices - *after_devices);
    return {};
  });
  if (!r) return r.err();
  return deleted;
}

core::result<device_page> index_db::list_devices(const device_query& q) {
  // Filters shared by the page and the count; the prefix is compared with substr, not LIKE, so
  // '%' and '_' in ids mean themselves and case matters on both back-ends.
  std::string where = " WHERE 1=1";
  sql_params params;
  if (!q.model.empty()) {
    where += " AND model=?";
    params.emplace_back(q.model);
  }
  if (!q.state.empty()) {
    where += " AND state=?";
    params.emplace_back(q.state);
  }
  if (!q.prefix.empty()) {
    std::int64_t chars = 0;  // code points, as substr counts them
    for (unsigned char c : q.prefix) chars += (c & 0xC0) != 0x80;
    where += " AND substr(device_id, 1, ?)=?";
    params.emplace_back(chars);
    params.emplace_back(q.prefix);
  }
  device_page page;
  auto total = db_->query("SELECT COUNT(*) FROM device_state" + where, params);
  if (!total) return total.err();
  page.total = static_cast<std::uint64_t>(total->front().integer(0));
  auto page_params = params;
  std::string sql =
      "SELECT device_id,model,from_version,to_version,state,error,bytes_downloaded,client,last_seen,tags_json "
      "FROM device_state" + where;
  if (!q.after_device.empty() || !q.after_model.empty()) {
    sql += " AND (device_id > ? OR (device_id = ? AND model > ?))";
    page_params.emplace_back(q.after_device);
    page_params.emplace_back(q.after_device);
    page_params.emplace_back(q.after_model);
  }
  sql += " ORDER BY device_id, model LIMIT ?";
  page_params.emplace_back(static_cast<std::int64_t>(q.limit + 1));
  auto rows = db_->query(sql, page_params);
  if (!rows) return rows.err();
  for (const auto& r : *rows) {
    if (page.devices.size() == q.limit) {
      page.more = true;
      break;
    }
    auto d = report_from(r);
    d.tags_json = r.text(9);
    page.devices.push_back(std::move(d));
  }
  return page;
}

core::result<std::vector<device_report>> index_db::latest_reports(const std::string& device_id, std::size_t limit) {
  auto rows = db_->query(
      "SELECT device_id,model,from_version,to_version,state,error,bytes_downloaded,client,last_seen,tags_json "
      "FROM device_state WHERE (?='' OR device_id=?) ORDER BY last_seen DESC, device_id, model LIMIT ?",
      {device_id, device_id, static_cast<std::int64_t>(limit)});
  if (!rows) return rows.err();
  std::vector<device_report> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) {
    out.push_back(report_from(r));
    out.back().tags_json = r.text(9);
  }
  return out;
}

core::result<std::map<std::string, std::uint64_t>> index_db::assign_version_numbers(
    const std::string& model, const std::vector<std::pair<std::string, std::string>>& versions) {
  std::map<std::string, std::uint64_t> out;
  auto r = db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    out.clear();
    auto rows = s.query("SELECT version, sha256, number FROM version_numbers WHERE model=?", {model});
    if (!rows) return rows.err();
    std::map<std::string, std::pair<std::string, std::uint64_t>> known;
    for (const auto& row : *rows) known[row.text(0)] = {row.text(1), static_cast<std::uint64_t>(row.integer(2))};
    std::map<std::string, std::string> present(versions.begin(), versions.end());
    // Gone, or replaced by other content: forgotten, so a later re-add is a new release.
    for (const auto& [version, sha_number] : known) {
      auto it = present.find(version);
      if (it == present.end() || it->second != sha_number.first)
        MALLORN_TRY(s.exec("DELETE FROM version_numbers WHERE model=? AND version=?", {model, version}));
    }
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (const auto& [version, sha] : versions) {  // in store order: a new store numbers 1, 2, 3...
      auto it = known.find(version);
      if (it != known.end() && it->second.first == sha) continue;
      auto n = s.query(
          "INSERT INTO version_counters(model, last_number) VALUES(?, 1) "
          "ON CONFLICT(model) DO UPDATE SET last_number=version_counters.last_number+1 RETURNING last_number",
          {model});
      if (!n) return n.err();
      // DO NOTHING: another replica numbering the same scan at the same moment won; its number stands.
      MALLORN_TRY(s.exec("INSERT INTO version_numbers(model, version, sha256, number, first_seen) VALUES(?,?,?,?,?) "
                         "ON CONFLICT(model, version) DO NOTHING",
                         {model, version, sha, n->front().integer(0), now}));
    }
    auto final_rows = s.query("SELECT version, number FROM version_numbers WHERE model=?", {model});
    if (!final_rows) return final_rows.err();
    for (const auto& row : *final_rows) out[row.text(0)] = static_cast<std::uint64_t>(row.integer(1));
    return {};
  });
  if (!r) return r.err();
  return out;
}

core::result<bool> index_db::claim_build(const std::string& key, const std::string& owner, std::int64_t now,
                                         std::int64_t lease_s) {
  MALLORN_TRY(db_->exec("INSERT INTO build_jobs(job_key, owner, lease_until, state, updated) VALUES(?, NULL, 0, 'queued', ?) "
                        "ON CONFLICT(job_key) DO NOTHING",
                        {key, now}));
  // One statement decides: free, expired (the builder died), or already ours.
  auto rows = db_->query(
      "UPDATE build_jobs SET owner=?, lease_until=?, state='building', updated=? "
      "WHERE job_key=? AND (owner IS NULL OR lease_until < ? OR owner=?) RETURNING owner",
      {owner, now + lease_s, now, key, now, owner});
  if (!rows) return rows.err();
  return !rows->empty();
}

core::result<bool> index_db::renew_build(const std::string& key, const std::string& owner, std::int64_t now,
                                         std::int64_t lease_s) {
  auto rows = db_->query("UPDATE build_jobs SET lease_until=?, updated=? WHERE job_key=? AND owner=? RETURNING owner",
                         {now + lease_s, now, key, owner});
  if (!rows) return rows.err();
  return !rows->empty();
}

core::result<void> index_db::finish_build(const std::string& key, const std::string& owner) {
  return db_->exec("DELETE FROM build_jobs WHERE job_key=? AND owner=?", {key, owner});
}

core::result<std::optional<std::string>> index_db::build_owner(const std::string& key, std::int64_t now) {
  auto rows = db_->query("SELECT owner FROM build_jobs WHERE job_key=? AND owner IS NOT NULL AND lease_until >= ?",
                         {key, now});
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<std::string>{};
  return std::optional<std::string>{rows->front().text(0)};
}

core::result<void> index_db::retain_numbered_models(const std::set<std::string>& models) {
  return db_->transaction([&](storage::sql_session& s) -> core::result<void> {
    auto rows = s.query("SELECT DISTINCT model FROM version_numbers", {});
    if (!rows) return rows.err();
    for (const auto& row : *rows)
      if (!models.count(row.text(0))) MALLORN_TRY(s.exec("DELETE FROM version_numbers WHERE model=?", {row.text(0)}));
    return {};
  });
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
