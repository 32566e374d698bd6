// The PostgreSQL back-end (libpq): a small pool of connections shared by the server's threads.
//
// Failure model: a connection that breaks (the server restarted, the network dropped) is closed
// and forgotten, and so is every idle connection opened before it (they are almost certainly dead
// too); the statement fails at once with errc::io_error, which routes turn into 503 +
// Retry-After. The next statement opens a fresh connection, so the replica recovers by itself
// when the database is back. Connecting never waits longer than connect_timeout (3 s unless the
// URL says otherwise).
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::storage {
namespace {

core::error pg_error(const std::string& what, PGconn* conn) {
  std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return core::make_error(core::errc::io_error, "index database (postgresql): " + what + ": " + msg);
}

// `?` -> `$1, $2, ...`, outside quoted strings and identifiers.
std::string to_dollar_params(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

std::string text_of(const sql_value& v) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  if (auto n = std::get_if<std::int64_t>(&v)) return std::to_string(*n);
  if (auto d = std::get_if<double>(&v)) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, *d);  // shortest text that round-trips
    return std::string(buf, r.ptr);
  }
  return {};
}

class pg_session final : public sql_session {
 public:
  explicit pg_session(PGconn* conn) : conn_(conn) {}
  sql_dialect dialect() const override { return sql_dialect::postgres; }
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }

  core::result<sql_rows> query(std::string_view sql, const sql_params& params) override {
    const std::string text = to_dollar_params(sql);
    std::vector<std::string> values;
    std::vector<const char*> ptrs;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(text_of(p));
    for (std::size_t i = 0; i < params.size(); ++i)
      ptrs.push_back(std::holds_alternative<std::nullptr_t>(params[i]) ? nullptr : values[i].c_str());
    PGresult* res = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr, ptrs.data(), nullptr,
                                 nullptr, 0);
    struct clear_on_exit {
      PGresult* r;
      ~clear_on_exit() { PQclear(r); }
    } guard{res};
    const auto status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return core::make_error(core::errc::io_error, "index database (postgresql): '" + std::string(sql.substr(0, 60)) +
                                                        "': " + (msg.empty() ? "connection lost" : msg));
    }
    sql_rows rows;
    const int nrows = PQntuples(res), ncols = PQnfields(res);
    rows.reserve(static_cast<std::size_t>(nrows));
    for (int r = 0; r < nrows; ++r) {
      std::vector<sql_value> cols;
      cols.reserve(static_cast<std::size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) cols.emplace_back(nullptr);
        else cols.emplace_back(std::string(PQgetvalue(res, r, c), static_cast<std::size_t>(PQgetlength(res, r, c))));
      }
      rows.emplace_back(std::move(cols));
    }
    return rows;
  }

  core::result<void> exec_script(std::string_view sql) override {
    PGresult* res = PQexec(conn_, std::string(sql).c_str());
    const auto status = PQresultStatus(res);
    std::string msg = res ? PQresultErrorMessage(res) : "";
    PQclear(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY) {
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      if (msg.empty()) return pg_error("script", conn_);
      return core::make_error(core::errc::io_error, "index database (postgresql): " + msg);
    }
    return {};
  }

 private:
  PGconn* conn_;
};

class pg_database final : public sql_database {
 public:
  pg_database(std::string url, std::string description, std::size_t max_connections)
      : url_(std::move(url)), description_(std::move(description)), max_(max_connections) {}
  ~pg_database() override {
    std::lock_guard lock(mutex_);
    for (auto* c : idle_) PQfinish(c);
  }
  sql_dialect dialect() const override { return sql_dialect::postgres; }
  std::string describe() const override { return description_; }

  core::result<sql_rows> query(std::string_view sql, const sql_params& params) override {
    auto conn = acquire();
    if (!conn) return conn.err();
    pg_session s(*conn);
    auto r = s.query(sql, params);
    release(*conn, s.broken());
    return r;
  }

  core::result<void> transaction(const std::function<core::result<void>(sql_session&)>& body) override {
    auto conn = acquire();
    if (!conn) return conn.err();
    pg_session s(*conn);
    if (auto b = s.exec_script("BEGIN"); !b) {
      release(*conn, s.broken());
      return b;
    }
    core::result<void> r = core::make_error(core::errc::io_error, "transaction body did not run");
    try {
      r = body(s);
    } catch (...) {
      (void)s.exec_script("ROLLBACK");
      release(*conn, s.broken());
      throw;
    }
    if (r) r = s.exec_script("COMMIT");
    if (!r) (void)s.exec_script("ROLLBACK");
    release(*conn, s.broken());
    return r;
  }

  core::result<void> ping() override {
    auto r = query("SELECT 1", {});
    if (!r) return r.err();
    return {};
  }

  core::result<PGconn*> connect() {
    // expand_dbname: the URL is the "dbname"; connect_timeout keeps outages fast to report.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* vals[] = {url_.c_str(), "3", "mallornd", nullptr};
    PGconn* c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
      auto e = pg_error("connecting to " + description_, c);
      PQfinish(c);
      return e;
    }
    // Quiet the server's NOTICEs (e.g. "relation already exists, skipping" from migrations).
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    return c;
  }

 private:
  core::result<PGconn*> acquire() {
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      if (!idle_.empty()) {
        PGconn* c = idle_.back();
        idle_.pop_back();
        return c;
      }
      if (open_ < max_) {
        ++open_;
        lock.unlock();
        auto c = connect();
        if (!c) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return c;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= max_)
        return core::make_error(core::errc::io_error, "index database (postgresql): all " + std::to_string(max_) +
                                                          " connections stayed busy for 10 s");
    }
  }

  void release(PGconn* c, bool broken) {
    std::lock_guard lock(mutex_);
    // A connection left inside a failed transaction would poison the next user: reset it.
    const bool stuck = !broken && PQtransactionStatus(c) != PQTRANS_IDLE;
    if (stuck) {
      PQfinish(c);
      --open_;
    } else if (broken) {
      PQfinish(c);
      --open_;
      // The database restarted or went away: the other idle connections are stale too.
      if (!idle_.empty())
        spdlog::warn("index database {}: connection lost; closing {} idle connections", description_, idle_.size());
      for (auto* other : idle_) PQfinish(other);
      open_ -= idle_.size();
      idle_.clear();
    } else {
      idle_.push_back(c);
    }
    cv_.notify_one();
  }

  std::string url_, description_;
  std::size_t max_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<PGconn*> idle_;
  std::size_t open_ = 0;  // idle + in use
};

// "postgresql://user:secret@host:5432/db?x=y" -> "postgresql://user@host:5432/db" (never the password).
std::string describe_url(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return "postgresql://(unparsable URL)";
  }
  std::string user, host, port, db;
  for (auto* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string k = o->keyword;
    if (k == "user") user = o->val;
    else if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    else if (k == "port") port = o->val;
    else if (k == "dbname") db = o->val;
  }
  PQconninfoFree(opts);
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host.empty() ? "localhost" : host;
  if (!port.empty()) out += ":" + port;
  if (!db.empty()) out += "/" + db;
  return out;
}

}  // namespace

core::result<std::unique_ptr<sql_database>> open_postgres(const std::string& url, std::size_t max_connections) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string msg = err ? err : "invalid URL";
    if (err) PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    // libpq's message never contains the password; the URL itself is not echoed.
    return core::make_error(core::errc::invalid_argument, "--database: not a valid PostgreSQL URL: " + msg);
  }
  PQconninfoFree(opts);
  auto db = std::make_unique<pg_database>(url, describe_url(url), std::max<std::size_t>(1, max_connections));
  // Connect once now: a wrong URL or password is reported at start-up, not at the first request.
  auto c = db->connect();
  if (!c) return c.err();
  PQfinish(*c);
  return std::unique_ptr<sql_database>(std::move(db));
}

}  // namespace mallorn::server::storage
