#include "mallorn/server/audit_log.hpp"

#include <algorithm>

namespace mallorn::server {
namespace {

std::string bounded(const std::string& s) {
  if (s.size() <= audit_log::max_field) return s;
  return s.substr(0, audit_log::max_field) + "\xe2\x80\xa6";
}

}  // namespace

std::vector<storage::migration> audit_log::migrations() {
  return {{400, "append-only audit log",
           R"sql(
CREATE TABLE IF NOT EXISTS audit_log(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at BIGINT NOT NULL, actor TEXT NOT NULL, scope TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, status BIGINT NOT NULL, client TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_by_actor ON audit_log(actor, seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
           R"sql(
CREATE TABLE IF NOT EXISTS audit_log(
  seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, scope TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, status BIGINT NOT NULL, client TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_by_actor ON audit_log(actor, seq);
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
)sql"}};
}

core::result<void> audit_log::record(const audit_entry& e) {
  return db_.exec("INSERT INTO audit_log(at, actor, scope, action, target, status, client) VALUES(?,?,?,?,?,?,?)",
                  {e.at, bounded(e.actor), e.scope, bounded(e.action), bounded(e.target),
                   static_cast<std::int64_t>(e.status), bounded(e.client)});
}

core::result<std::vector<audit_entry>> audit_log::list(std::size_t limit, std::int64_t before_seq, const std::string& actor) {
  limit = std::clamp<std::size_t>(limit, 1, 1000);
  auto rows = db_.query(
      "SELECT seq, at, actor, scope, action, target, status, client FROM audit_log "
      "WHERE (? = 0 OR seq < ?) AND (? = '' OR actor = ?) ORDER BY seq DESC LIMIT ?",
      {before_seq, before_seq, actor, actor, static_cast<std::int64_t>(limit)});
  if (!rows) return rows.err();
  std::vector<audit_entry> out;
  for (const auto& r : *rows)
    out.push_back({r.integer(0), r.integer(1), r.text(2), r.text(3), r.text(4), r.text(5), r.text(7),
                   static_cast<unsigned>(r.integer(6))});
  return out;
}

}  // namespace mallorn::server
