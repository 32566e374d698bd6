// Device requests that need the index wait on the blocking pool, never on an I/O thread (issue
// 18), against the real mallornd with one I/O thread over loopback: a token the credential cache
// does not hold, a flood of unknown tokens (bounded, 503 past --max-queued-lookups), and a
// check-update whose answer is not cached on a shared PostgreSQL index. The index is held by a
// real lock from another process; while it is, requests answered from memory on the same I/O
// thread must still be answered at once (on the old code they waited behind the lookup).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "support/curl_call.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/device_key.hpp"
#include "support/postgres_server.hpp"
#include "support/raw_conn.hpp"
#include "support/shell.hpp"

using namespace mallorn;
using namespace mallorn::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string admin_secret = "offload-admin-token-0123456789";

struct offload_rig : daemon_store_rig {
  offload_rig() : daemon_store_rig("offload", admin_secret, {"tfm-hello-world-int8"}) {}
  std::string check_body(const std::string& profile = "standard") const {
    return json{{"sha256", core::to_hex(*core::sha256_of_file(pairs[0].v1))}, {"profile", profile}}.dump();
  }
  // -m 2: an answer that waits behind the index would take the 5 s of SQLite's busy timeout.
  std::string check(const daemon_process& d, const std::string& extra = "", const std::string& profile = "standard",
                    int max_seconds = 2) const {
    return "-m " + std::to_string(max_seconds) + " " + extra + " -X POST -d '" + check_body(profile) + "' " +
           d.url("/check-update");
  }
};

// Another process holds SQLite's write lock; a report the daemon stores meanwhile waits on it for
// the busy timeout (5 s) holding the daemon's one index connection, so every index read waits too.
struct sqlite_lock {
  sqlite3* db = nullptr;
  std::future<curl_result> stuck_report;
  sqlite_lock(const offload_rig& r, const daemon_process& d) {
    EXPECT_EQ(sqlite3_open((r.dir / "data" / "index.sqlite").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    const std::string report = json{{"device_id", "dev-stuck"}, {"state", "idle"}}.dump();
    stuck_report = std::async(std::launch::async, [url = d.url("/report"), report] {
      return curl("-X POST -d '" + report + "' " + url);
    });
    std::this_thread::sleep_for(300ms);  // the writer thread is inside the busy wait now
  }
  ~sqlite_lock() {
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    if (stuck_report.valid()) stuck_report.wait();
  }
};

std::string bearer(const std::string& token) { return "-H 'Authorization: Bearer " + token + "'"; }

std::string metric(const daemon_process& d, const std::string& name) {
  auto text = curl(d.url("/metrics")).body;
  auto pos = text.find("\n" + name + " ");
  return pos == std::string::npos ? "" : text.substr(pos + name.size() + 2, text.find('\n', pos + 1) - pos - name.size() - 2);
}

// Enrolls and admits `id`, returns a token for it.
std::string token_for(const offload_rig& r, const daemon_process& d, const device_key& key, const std::string& id) {
  auto post = [&](const std::string& path, const std::string& body, const std::string& extra = "") {
    return curl(extra + " -X POST -H 'Content-Type: application/json' -d '" + body + "' " + d.url(path));
  };
  EXPECT_EQ(post("/enroll", key.enroll_body(id)).status, 202);
  EXPECT_EQ(post("/admin/devices/" + id + "/admit", "{}", bearer(r.admin_token)).status, 200);
  auto got = post("/token", key.token_body(id));
  EXPECT_EQ(got.status, 200) << got.body;
  return json::parse(got.body, nullptr, false).value("token", "");
}

}  // namespace

// A token not in the credential cache is looked up on the pool: while that lookup waits on the
// index, an anonymous check-update on the same (only) I/O thread is answered at once. Once looked
// up, the token is answered from memory even while the index is locked; a local revocation
// forgets it at once.
TEST(IndexOffload, AnUncachedTokenWaitsOnThePoolNotOnTheIoThread) {
  offload_rig r;
  daemon_process d(r.dir.path(), r.args({"--threads", "1", "--device-auth", "optional", "--device-auth-cache", "60"}));
  ASSERT_TRUE(d.listening()) << d.log();
  for (int i = 0; i < 600 && curl(r.check(d)).status != 200; ++i) std::this_thread::sleep_for(50ms);  // built
  device_key key;
  const std::string token = token_for(r, d, key, "dev-1");
  ASSERT_FALSE(token.empty());
  std::optional<sqlite_lock> locked;
  locked.emplace(r, d);
  auto authed = std::async(std::launch::async, [&] { return curl(r.check(d, bearer(token), "standard", 20)); });
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(authed.wait_for(0s), std::future_status::timeout) << "the token lookup did not wait on the index";
  const auto anonymous = curl(r.check(d));
  EXPECT_EQ(anonymous.status, 200) << "the I/O thread waited behind the token lookup: " << anonymous.body;
  locked.reset();
  const auto answer = authed.get();
  EXPECT_EQ(answer.status, 200) << answer.body;
  locked.emplace(r, d);
  const auto cached = curl(r.check(d, bearer(token)));
  EXPECT_EQ(cached.status, 200) << "a cached token waited on the index: " << cached.body;
  locked.reset();
  ASSERT_EQ(curl("-X POST " + bearer(r.admin_token) + " " + d.url("/admin/devices/dev-1/revoke")).status, 200);
  const auto revoked = curl(r.check(d, bearer(token)));
  EXPECT_EQ(revoked.status, 401) << revoked.body;
}

// Hostile: unknown tokens from many connections while the index is locked. At most
// --max-queued-lookups wait for the index; the rest are answered 503 busy + Retry-After at once
// and counted, the I/O thread keeps answering, and the waiting ones get 401 once the lock is gone.
TEST(IndexOffload, AFloodOfUnknownTokensIsBoundedAndAnswered) {
  offload_rig r;
  daemon_process d(r.dir.path(), r.args({"--threads", "1", "--device-auth", "optional", "--max-queued-lookups", "2"}));
  ASSERT_TRUE(d.listening()) << d.log();
  for (int i = 0; i < 600 && curl(r.check(d)).status != 200; ++i) std::this_thread::sleep_for(50ms);
  std::vector<raw_conn> flood;
  {
    sqlite_lock locked(r, d);
    const std::string body = r.check_body();
    for (int i = 0; i < 6; ++i) {
      flood.emplace_back(d.port());
      const std::string token = "mdt_" + std::string(i == 0 ? 6000 : 64, static_cast<char>('a' + i));
      ASSERT_TRUE(flood.back().send("POST /check-update HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
      std::this_thread::sleep_for(20ms);  // in order: the first two take the slots
    }
    int busy = 0;
    for (std::size_t i = 2; i < flood.size(); ++i) {
      bool closed = false;
      const auto answer = flood[i].read_all(500ms, closed);
      EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
      EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
      EXPECT_TRUE(closed) << "the body was not read: the connection cannot be reused";
      busy += answer.find("\"code\":\"busy\"") != std::string::npos;
    }
    EXPECT_EQ(busy, 4);
    EXPECT_EQ(curl(r.check(d)).status, 200);  // the I/O thread answers meanwhile
    EXPECT_EQ(curl(r.check(d, "-H 'Authorization: Basic eDp5'")).status, 401);  // no lookup for a non-bearer
  }
  for (int i = 0; i < 2; ++i) {
    bool closed = false;
    const auto answer = flood[i].read_all(8s, closed);
    EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 401") << answer;
    EXPECT_NE(answer.find("invalid_token"), std::string::npos) << answer;
  }
  EXPECT_EQ(metric(d, "mallornd_index_lookups_shed_total"), "4");
  EXPECT_NE(d.log().find("index lookups: 2 queued"), std::string::npos) << d.log();
}

// Several replicas share PostgreSQL: a check-update whose answer is not cached asks the index
// whether another replica built the patch. While another session holds the patches table, that
// one waits on the pool and a cached answer on the same I/O thread is still given at once.
TEST(IndexOffload, ACheckUpdateMissOnASharedIndexWaitsOnThePool) {
  auto& pg = postgres_server::shared();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.create_database(&name);
  offload_rig r;
  daemon_process d(r.dir.path(), r.args({"--threads", "1", "--database", url}));
  ASSERT_TRUE(d.listening()) << d.log();
  for (int i = 0; i < 600 && curl(r.check(d)).status != 200; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(curl(r.check(d)).status, 200);

  auto holder = std::async(std::launch::async, [&] {
    return pg.psql(name, "BEGIN; LOCK TABLE patches IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;");
  });
  bool held = false;
  for (int i = 0; i < 100 && !held; ++i) {
    held = pg.psql(name, "SELECT COUNT(*) FROM pg_locks WHERE relation = 'patches'::regclass AND granted "
                   "AND mode = 'AccessExclusiveLock'").out == "1\n";
    if (!held) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(held);
  auto miss = std::async(std::launch::async, [&] { return curl(r.check(d, "", "mcu", 20)); });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(miss.wait_for(0s), std::future_status::timeout) << "the miss did not wait on the index";
  const auto hit = curl(r.check(d));
  EXPECT_EQ(hit.status, 200) << "the I/O thread waited behind the miss: " << hit.body;
  const auto answered = miss.get();
  EXPECT_TRUE(answered.status == 200 || answered.status == 202) << answered.status << " " << answered.body;
  holder.wait();
}
