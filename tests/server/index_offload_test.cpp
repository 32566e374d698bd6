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

// mallornd with one I/O thread on a fresh PostgreSQL database (a replica of a shared index), its
// pair built; hold() locks one of the index's tables from another session for 4 s.
struct shared_index_rig {
  postgres_server& pg = postgres_server::shared();
  std::string name;
  offload_rig r;
  std::optional<daemon_process> d;
  std::string ready_body;
  bool start(std::vector<std::string> extra_args = {}) {
    if (!pg.ok()) return false;
    const std::string url = pg.create_database(&name);
    std::vector<std::string> args{"--threads", "1", "--database", url};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    d.emplace(r.dir.path(), r.args(args));
    if (!d->listening()) return false;
    for (int i = 0; i < 600; ++i) {
      auto got = curl(r.check(*d));
      if (got.status == 200) {
        ready_body = got.body;
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  // Returns once the lock is granted; the future ends when it is released.
  std::future<shell_result> hold(const std::string& table) {
    auto holder = std::async(std::launch::async, [this, table] {
      return pg.psql(name, "BEGIN; LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;");
    });
    bool held = false;
    for (int i = 0; i < 100 && !held; ++i) {
      held = pg.psql(name, "SELECT COUNT(*) FROM pg_locks WHERE relation = '" + table +
                               "'::regclass AND granted AND mode = 'AccessExclusiveLock'").out == "1\n";
      if (!held) std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(held) << table;
    return holder;
  }
};

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
  shared_index_rig s;
  ASSERT_TRUE(s.start()) << s.pg.error() << (s.d ? s.d->log() : "");
  auto& r = s.r;
  auto& d = *s.d;
  auto holder = s.hold("patches");
  auto miss = std::async(std::launch::async, [&] { return curl(r.check(d, "", "mcu", 20)); });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(miss.wait_for(0s), std::future_status::timeout) << "the miss did not wait on the index";
  const auto hit = curl(r.check(d));
  EXPECT_EQ(hit.status, 200) << "the I/O thread waited behind the miss: " << hit.body;
  const auto answered = miss.get();
  EXPECT_TRUE(answered.status == 200 || answered.status == 202) << answered.status << " " << answered.body;
  holder.wait();
}

// On a shared PostgreSQL index a download pins its patch with a row other replicas respect, and a
// patch id this replica does not know is looked up in the index: both wait on the pool, so while
// another session holds those tables, a cached check-update on the same (only) I/O thread is
// answered at once (on the old code the I/O thread waited inside the pin's INSERT). A second
// download of the patch within half a lease reuses the pin row and needs the index not at all.
TEST(IndexOffload, APatchDownloadOnASharedIndexWaitsOnThePool) {
  shared_index_rig s;
  ASSERT_TRUE(s.start()) << s.pg.error() << (s.d ? s.d->log() : "");
  auto& r = s.r;
  auto& d = *s.d;
  const std::string patch_path = json::parse(s.ready_body, nullptr, false).value("patch_url", "");
  ASSERT_FALSE(patch_path.empty()) << s.ready_body;
  const auto patch_file = r.dir / "downloaded.mlrn";

  {  // the first download writes the pin row: it waits, the I/O thread does not
    auto holder = s.hold("patch_pins");
    auto download = std::async(std::launch::async, [&] { return curl("-m 20 -o " + patch_file.string() + " " + d.url(patch_path)); });
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(download.wait_for(0s), std::future_status::timeout) << "the download did not wait for its pin row";
    const auto hit = curl(r.check(d));
    EXPECT_EQ(hit.status, 200) << "the I/O thread waited behind the pin: " << hit.body;
    EXPECT_EQ(download.get().status, 200);
    EXPECT_GT(std::filesystem::file_size(patch_file), 0u);
    holder.wait();
  }
  {  // a second download within half a lease does not touch the index
    auto holder = s.hold("patch_pins");
    EXPECT_EQ(curl("-m 2 -o " + patch_file.string() + " " + d.url(patch_path)).status, 200);
    holder.wait();
  }
  {  // an id this replica does not know is looked up on the pool
    std::string unknown = patch_path.substr(patch_path.rfind('/') + 1);
    unknown.back() = unknown.back() == '0' ? '1' : '0';
    auto holder = s.hold("patches");
    auto lookup = std::async(std::launch::async, [&] { return curl("-m 20 " + d.url("/patch/" + unknown)); });
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(lookup.wait_for(0s), std::future_status::timeout) << "the unknown id was not looked up in the index";
    const auto hit = curl(r.check(d));
    EXPECT_EQ(hit.status, 200) << "the I/O thread waited behind the lookup: " << hit.body;
    EXPECT_EQ(lookup.get().status, 404);
    holder.wait();
  }
}

// Hostile: downloads of patch ids nobody built, from many connections, while another session holds
// the shared index. At most --max-queued-lookups of them wait for the index; the rest are answered
// at once with 503 busy + Retry-After (and the connection closed, like every shed lookup), counted,
// and the waiting one gets its 404 once the lock is gone.
TEST(IndexOffload, AFloodOfUnknownPatchIdsOnASharedIndexIsBounded) {
  shared_index_rig s;
  ASSERT_TRUE(s.start({"--max-queued-lookups", "1"})) << s.pg.error() << (s.d ? s.d->log() : "");
  auto& r = s.r;
  auto& d = *s.d;
  const std::string patch_path = json::parse(s.ready_body, nullptr, false).value("patch_url", "");
  ASSERT_GT(patch_path.size(), 8u) << s.ready_body;
  std::vector<raw_conn> flood;
  {
    auto holder = s.hold("patches");
    for (char c : std::string("0123")) {
      std::string unknown = patch_path;
      unknown.back() = unknown.back() == c ? 'f' : c;  // a well-formed id this replica does not know
      flood.emplace_back(d.port());
      ASSERT_TRUE(flood.back().send("GET " + unknown + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      std::this_thread::sleep_for(50ms);  // in order: the first takes the one slot
    }
    for (std::size_t i = 1; i < flood.size(); ++i) {
      bool closed = false;
      const auto answer = flood[i].read_all(1s, closed);
      EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
      EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
      EXPECT_NE(answer.find("\"code\":\"busy\""), std::string::npos) << answer;
      EXPECT_TRUE(closed) << answer;
    }
    EXPECT_EQ(curl(r.check(d)).status, 200);  // the I/O thread answers meanwhile
    holder.wait();
  }
  bool closed = false;
  const auto waited = flood[0].read_all(2s, closed);
  EXPECT_EQ(waited.substr(0, 12), "HTTP/1.1 404") << waited;
  EXPECT_EQ(metric(d, "mallornd_index_lookups_shed_total"), "3");
}
