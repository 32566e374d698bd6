// One storage suite, run against both back-ends: a SQLite file and a private PostgreSQL server
// (tests/support/postgres_server.hpp). Every index_db method, the migration runner (twice, and by
// two openers at once), transactions (rollback on error and on throw) and the dialect details the
// code relies on (placeholders, NULLs, doubles, RETURNING, ON CONFLICT).
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "mallorn/server/index_db.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using server::storage::sql_database;
using server::storage::sql_session;

namespace {

struct sqlite_backend {
  static constexpr const char* name = "sqlite";
  test::temp_dir dir{"storage"};
  std::string url() { return "sqlite:" + (dir / "index.sqlite").string(); }
};

struct postgres_backend {
  static constexpr const char* name = "postgres";
  test::temp_dir dir{"storage"};
  std::string db_url;
  std::string url() {
    auto& pg = test::postgres_server::shared();
    if (db_url.empty() && pg.ok()) db_url = pg.create_database();
    return db_url;
  }
};

template <typename Backend>
class StorageSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (std::is_same_v<Backend, postgres_backend>) {
      auto& pg = test::postgres_server::shared();
      ASSERT_TRUE(pg.ok()) << pg.error();
    }
    ASSERT_FALSE(backend.url().empty());
  }
  std::unique_ptr<sql_database> open_raw() {
    auto db = server::storage::open_database(backend.url(), backend.dir.path());
    EXPECT_TRUE(db) << db.err().what();
    return db ? std::move(*db) : nullptr;
  }
  std::unique_ptr<server::index_db> open_index(std::vector<server::storage::migration> extra = {}) {
    auto raw = open_raw();
    if (!raw) return nullptr;
    auto db = server::index_db::open(std::move(raw), std::move(extra));
    EXPECT_TRUE(db) << db.err().what();
    return db ? std::move(*db) : nullptr;
  }
  Backend backend;
};

struct backend_names {
  template <typename T>
  static std::string GetName(int) {
    return T::name;
  }
};
using backends = ::testing::Types<sqlite_backend, postgres_backend>;
TYPED_TEST_SUITE(StorageSuite, backends, backend_names);

server::patch_row patch(const std::string& id, const std::string& src, const std::string& dst, std::int64_t t) {
  server::patch_row p;
  p.id = id;
  p.source_sha256 = src;
  p.target_sha256 = dst;
  p.profile = "standard";
  p.model = "m";
  p.source_version = "1";
  p.target_version = "2";
  p.size = 1234;
  p.is_signed = true;
  p.created = p.last_used = t;
  p.build_seconds = 0.25;
  return p;
}

server::device_report report(const std::string& device, const std::string& state, std::int64_t t) {
  server::device_report r;
  r.device_id = device;
  r.model = "m";
  r.from_version = "1";
  r.to_version = "2";
  r.state = state;
  r.error = state == "failed" ? "disk full" : "";
  r.bytes_downloaded = 77;
  r.client = "127.0.0.1";
  r.received_at = t;
  return r;
}

}  // namespace

TYPED_TEST(StorageSuite, ModelsUpsertFindAndRetain) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  server::indexed_model m;
  m.path = "/store/m/1.tflite";
  m.size = 10;
  m.mtime_ns = 1700000000123456789;
  m.sha256 = std::string(64, 'a');
  m.fingerprint.format = core::model_format::tflite;
  m.fingerprint.file_size = 10;
  m.fingerprint.header_hash = "h";
  m.fingerprint.tail_hash = "t";
  m.fingerprint.combined_hash = "c";
  ASSERT_TRUE(db->upsert_model(m));
  auto found = db->find_model(m.path);
  ASSERT_TRUE(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->mtime_ns, m.mtime_ns);
  EXPECT_EQ((*found)->sha256, m.sha256);
  EXPECT_EQ((*found)->fingerprint.format, core::model_format::tflite);
  EXPECT_EQ((*found)->fingerprint.combined_hash, "c");
  m.size = 11;
  m.sha256 = std::string(64, 'b');
  ASSERT_TRUE(db->upsert_model(m));  // same path: updated, not duplicated
  EXPECT_EQ((*db->find_model(m.path))->sha256, m.sha256);
  EXPECT_EQ((*db->find_model(m.path))->size, 11u);
  auto other = m;
  other.path = "/store/m/2.tflite";
  ASSERT_TRUE(db->upsert_model(other));
  ASSERT_TRUE(db->retain_models({other.path}));
  EXPECT_FALSE(db->find_model(m.path)->has_value());
  EXPECT_TRUE(db->find_model(other.path)->has_value());
  EXPECT_FALSE(db->find_model("/nope")->has_value());
}

TYPED_TEST(StorageSuite, PatchesInsertReplaceUsageDelete) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  const std::string a(64, '1'), b(64, '2'), c(64, '3');
  ASSERT_TRUE(db->insert_patch(patch("p1", a, b, 100)));
  ASSERT_TRUE(db->insert_patch(patch("p2", a, c, 100)));
  // A rebuild of the same pair replaces the old row.
  ASSERT_TRUE(db->insert_patch(patch("p3", a, b, 200)));
  auto all = db->all_patches();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  std::map<std::string, server::patch_row> by_id;
  for (auto& p : *all) by_id[p.id] = p;
  ASSERT_TRUE(by_id.count("p3"));
  ASSERT_TRUE(by_id.count("p2"));
  EXPECT_TRUE(by_id["p3"].is_signed);
  EXPECT_DOUBLE_EQ(by_id["p3"].build_seconds, 0.25);
  EXPECT_EQ(by_id["p3"].size, 1234u);
  // Usage adds up; last_used only moves forward.
  ASSERT_TRUE(db->add_patch_usage("p3", 2, 500, 300));
  ASSERT_TRUE(db->add_patch_usage("p3", 1, 100, 250));
  auto after = db->all_patches();
  ASSERT_TRUE(after);
  for (auto& p : *after)
    if (p.id == "p3") {
      EXPECT_EQ(p.hits, 3u);
      EXPECT_EQ(p.bytes_served, 600u);
      EXPECT_EQ(p.last_used, 300);
    }
  ASSERT_TRUE(db->delete_patch("p2"));
  ASSERT_EQ(db->all_patches()->size(), 1u);
}

TYPED_TEST(StorageSuite, ReportsLatestPerDevice) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->insert_report(report("dev-a", "downloading", 1)));
  ASSERT_TRUE(db->insert_report(report("dev-b", "committed", 2)));
  ASSERT_TRUE(db->insert_report(report("dev-a", "failed", 3)));
  auto latest = db->latest_reports();
  ASSERT_TRUE(latest);
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].device_id, "dev-a");  // newest first
  EXPECT_EQ((*latest)[0].state, "failed");
  EXPECT_EQ((*latest)[0].error, "disk full");
  EXPECT_EQ((*latest)[0].bytes_downloaded, 77u);
  EXPECT_EQ((*latest)[1].device_id, "dev-b");
  auto one = db->latest_reports("dev-b");
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].state, "committed");
  EXPECT_EQ(db->latest_reports("", 1)->size(), 1u);
  EXPECT_TRUE(db->latest_reports("nobody")->empty());
}

TYPED_TEST(StorageSuite, MigrationsRunOnceWhenOpenedTwice) {
  {
    auto db = this->open_index();
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->insert_report(report("dev-a", "committed", 1)));
  }
  auto raw = this->open_raw();
  ASSERT_TRUE(raw);
  auto again = server::storage::apply_migrations(*raw, server::index_db::migrations());
  ASSERT_TRUE(again) << again.err().what();
  EXPECT_EQ(*again, 0);
  auto db = server::index_db::open(std::move(raw));
  ASSERT_TRUE(db);
  EXPECT_EQ((*db)->latest_reports()->size(), 1u);  // data kept
}

TYPED_TEST(StorageSuite, TwoConcurrentOpenersApplyEachMigrationOnce) {
  std::vector<server::storage::migration> extra = {
      {150, "test table", "CREATE TABLE t150(k TEXT PRIMARY KEY, v BIGINT NOT NULL)",
       "CREATE TABLE t150(k TEXT PRIMARY KEY, v BIGINT NOT NULL)"}};
  const auto total = static_cast<int>(server::index_db::migrations().size() + extra.size());
  std::unique_ptr<sql_database> a = this->open_raw(), b = this->open_raw();
  ASSERT_TRUE(a && b);
  core::result<int> ra = 0, rb = 0;
  std::thread ta([&] {
    auto all = server::index_db::migrations();
    all.insert(all.end(), extra.begin(), extra.end());
    ra = server::storage::apply_migrations(*a, all);
  });
  std::thread tb([&] {
    auto all = server::index_db::migrations();
    all.insert(all.end(), extra.begin(), extra.end());
    rb = server::storage::apply_migrations(*b, all);
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra) << ra.err().what();
  ASSERT_TRUE(rb) << rb.err().what();
  EXPECT_EQ(*ra + *rb, total);  // (CREATE TABLE without IF NOT EXISTS would fail if run twice)
  auto count = a->query("SELECT COUNT(*) FROM schema_migrations");
  ASSERT_TRUE(count);
  EXPECT_EQ(count->front().integer(0), total);
}

TYPED_TEST(StorageSuite, DuplicateMigrationNumbersAreRefused) {
  auto raw = this->open_raw();
  ASSERT_TRUE(raw);
  auto r = server::storage::apply_migrations(*raw, {{7, "a", "SELECT 1", "SELECT 1"}, {7, "b", "SELECT 1", "SELECT 1"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.err().message.find("defined twice"), std::string::npos);
}

TYPED_TEST(StorageSuite, TransactionRollsBackOnErrorAndOnThrow) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  auto& sql = db->database();
  // An error after BEGIN: nothing of the transaction stays.
  auto r = sql.transaction([&](sql_session& s) -> core::result<void> {
    MALLORN_TRY(s.exec("INSERT INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) "
                       "VALUES('x',1,1,'s','raw','h','t','c')"));
    return s.exec("INSERT INTO no_such_table VALUES(1)");
  });
  EXPECT_FALSE(r);
  EXPECT_FALSE(db->find_model("x")->has_value());
  // The connection is usable afterwards (no transaction left open).
  EXPECT_TRUE(sql.ping());
  EXPECT_THROW((void)sql.transaction([&](sql_session& s) -> core::result<void> {
    (void)s.exec("INSERT INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) "
                 "VALUES('y',1,1,'s','raw','h','t','c')");
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_FALSE(db->find_model("y")->has_value());
  // A body returning an error without a failed statement is rolled back too.
  r = sql.transaction([&](sql_session& s) -> core::result<void> {
    MALLORN_TRY(s.exec("INSERT INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) "
                       "VALUES('z',1,1,'s','raw','h','t','c')"));
    return core::make_error(core::errc::invalid_argument, "changed my mind");
  });
  EXPECT_FALSE(r);
  EXPECT_FALSE(db->find_model("z")->has_value());
  // And a good one commits.
  ASSERT_TRUE(sql.transaction([&](sql_session& s) -> core::result<void> {
    return s.exec("INSERT INTO models(path,size,mtime_ns,sha256,format,header_hash,tail_hash,combined_hash) "
                  "VALUES('w',1,1,'s','raw','h','t','c')");
  }));
  EXPECT_TRUE(db->find_model("w")->has_value());
}

TYPED_TEST(StorageSuite, DialectDetails) {
  auto raw = this->open_raw();
  ASSERT_TRUE(raw);
  ASSERT_TRUE(raw->exec("CREATE TABLE kv(k TEXT PRIMARY KEY, n BIGINT, d DOUBLE PRECISION, s TEXT)"));
  // A '?' inside a string literal is not a placeholder; NULL and doubles round-trip.
  ASSERT_TRUE(raw->exec("INSERT INTO kv(k,n,d,s) VALUES(?,?,?,'what?')", {std::string("a"), nullptr, 0.1}));
  auto rows = raw->query("SELECT k,n,d,s FROM kv WHERE k=?", {std::string("a")});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_TRUE((*rows)[0].is_null(1));
  EXPECT_DOUBLE_EQ((*rows)[0].real(2), 0.1);
  EXPECT_EQ((*rows)[0].text(3), "what?");
  // ON CONFLICT DO UPDATE ... RETURNING: the atomic counter the version numbers use.
  for (int i = 1; i <= 3; ++i) {
    auto n = raw->query("INSERT INTO kv(k,n) VALUES('ctr',1) ON CONFLICT(k) DO UPDATE SET n=kv.n+1 RETURNING n");
    ASSERT_TRUE(n) << n.err().what();
    EXPECT_EQ(n->front().integer(0), i);
  }
  // Large integers survive the text protocol.
  ASSERT_TRUE(raw->exec("UPDATE kv SET n=? WHERE k='a'", {std::int64_t{9007199254740993}}));
  EXPECT_EQ(raw->query("SELECT n FROM kv WHERE k='a'")->front().integer(0), 9007199254740993);
  // Errors are io_error with the database's message.
  auto bad = raw->query("SELEC nonsense");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, core::errc::io_error);
  EXPECT_TRUE(raw->ping());
  EXPECT_EQ(raw->describe().find("secret"), std::string::npos);
}

// ---- PostgreSQL only -------------------------------------------------------------------------

TEST(StoragePostgres, DescribeNeverShowsThePassword) {
  auto& pg = test::postgres_server::shared();
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_EQ(pg.psql("postgres", "ALTER USER mallorn PASSWORD 'hunter2secret'").exit_code, 0);
  // trust authentication accepts any password: the URL works and its description hides it.
  const std::string url = "postgresql://mallorn:hunter2secret@/postgres?host=" + pg.socket_dir().string() + "&port=5432";
  auto db = server::storage::open_database(url, "/tmp");
  ASSERT_TRUE(db) << db.err().what();
  EXPECT_EQ((*db)->describe().find("hunter2"), std::string::npos);
  EXPECT_NE((*db)->describe().find("mallorn@"), std::string::npos);
  // A wrong URL fails at open, and the error does not echo the password either.
  auto bad = server::storage::open_database(
      "postgresql://mallorn:hunter2secret@/nodb?host=" + pg.socket_dir().string() + "&port=5432", "/tmp");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().message.find("hunter2"), std::string::npos);
  EXPECT_NE(bad.err().message.find("nodb"), std::string::npos);
}

TEST(StoragePostgres, OutageFailsFastThenRecovers) {
  auto& pg = test::postgres_server::shared();
  ASSERT_TRUE(pg.ok()) << pg.error();
  const std::string url = pg.create_database();
  auto opened = server::storage::open_database(url, "/tmp");
  ASSERT_TRUE(opened) << opened.err().what();
  auto idx = server::index_db::open(std::move(*opened));
  ASSERT_TRUE(idx);
  auto& db = (*idx)->database();
  // Several pooled connections, so the outage finds stale idle ones.
  std::vector<std::thread> t;
  for (int i = 0; i < 4; ++i) t.emplace_back([&] { (void)(*idx)->insert_report(report("d", "committed", 1)); });
  for (auto& th : t) th.join();
  ASSERT_TRUE(db.ping());

  pg.stop();
  for (int i = 0; i < 3; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto r = db.ping();
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, core::errc::io_error);
    EXPECT_LT(took, std::chrono::seconds(5)) << "a query during the outage must fail fast";
    EXPECT_FALSE((*idx)->insert_report(report("d", "failed", 2)));
  }
  pg.start();
  ASSERT_TRUE(pg.ok()) << pg.error();
  // Recovery without restarting: at most the first statement meets a stale connection.
  bool recovered = false;
  for (int i = 0; i < 3 && !recovered; ++i) recovered = db.ping().ok();
  ASSERT_TRUE(recovered);
  ASSERT_TRUE((*idx)->insert_report(report("d", "applied", 3)));
  EXPECT_EQ((*idx)->latest_reports("d")->front().state, "applied");
}

TYPED_TEST(StorageSuite, BuildJobClaimsAreExclusiveAndExpire) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  auto claim = [&](const std::string& owner, std::int64_t now) {
    auto r = db->claim_build("pair-1", owner, now, 30);
    EXPECT_TRUE(r) << r.err().what();
    return r && *r;
  };
  EXPECT_TRUE(claim("replica-a", 1000));
  EXPECT_FALSE(claim("replica-b", 1010));  // a's lease runs to 1030
  EXPECT_TRUE(claim("replica-a", 1011));   // the owner may claim again
  EXPECT_EQ(db->build_owner("pair-1", 1012)->value_or(""), "replica-a");
  EXPECT_TRUE(*db->renew_build("pair-1", "replica-a", 1020, 30));  // now to 1050
  EXPECT_FALSE(claim("replica-b", 1045));
  // a died: after its lease, b takes over, and a's renewal tells a it lost the job.
  EXPECT_TRUE(claim("replica-b", 1051));
  EXPECT_FALSE(*db->renew_build("pair-1", "replica-a", 1052, 30));
  ASSERT_TRUE(db->finish_build("pair-1", "replica-a"));  // not a's to release: no effect
  EXPECT_EQ(db->build_owner("pair-1", 1053)->value_or(""), "replica-b");
  ASSERT_TRUE(db->finish_build("pair-1", "replica-b"));
  EXPECT_FALSE(db->build_owner("pair-1", 1054)->has_value());
  EXPECT_TRUE(claim("replica-a", 1055));
}

TYPED_TEST(StorageSuite, BuildJobClaimIsAtomicUnderConcurrency) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  // 8 openers (each its own connection for PostgreSQL) race for 20 keys: one winner per key.
  std::vector<std::unique_ptr<server::index_db>> replicas;
  for (int i = 0; i < 4; ++i) replicas.push_back(this->open_index());
  std::atomic<int> wins{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto& mine = *replicas[i % replicas.size()];
      for (int k = 0; k < 20; ++k) {
        auto r = mine.claim_build("key-" + std::to_string(k), "replica-" + std::to_string(i), 5000, 60);
        if (!r) ++errors;
        else if (*r) ++wins;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), 20);
}

TYPED_TEST(StorageSuite, PatchLookupsAndPinsSharedByReplicas) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->insert_patch(patch("p1", "s1", "t1", 100)));
  auto by_key = db->find_patch("s1", "t1", "standard");
  ASSERT_TRUE(by_key && *by_key);
  EXPECT_EQ((*by_key)->id, "p1");
  EXPECT_FALSE(db->find_patch("s1", "t1", "mcu")->has_value());
  ASSERT_TRUE(db->find_patch_by_id("p1")->has_value());
  EXPECT_FALSE(db->find_patch_by_id("p2")->has_value());
  // Pinned by replica b until 2000 (renewed: the later time stands): a cannot evict it until then.
  ASSERT_TRUE(db->pin_patch("p1", "b", 1500));
  ASSERT_TRUE(db->pin_patch("p1", "b", 2000));
  EXPECT_FALSE(*db->delete_patch_unless_pinned("p1", 1900));
  EXPECT_TRUE(db->find_patch_by_id("p1")->has_value());
  EXPECT_TRUE(*db->delete_patch_unless_pinned("p1", 2001));  // b died or finished: the pin lapsed
  EXPECT_FALSE(db->find_patch_by_id("p1")->has_value());
  EXPECT_FALSE(*db->delete_patch_unless_pinned("p1", 2002));  // already gone
}

TYPED_TEST(StorageSuite, VersionNumbersAreStableAndNeverReused) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  using list = std::vector<std::pair<std::string, std::string>>;
  using numbers = std::map<std::string, std::uint64_t>;
  EXPECT_EQ(*db->assign_version_numbers("m", list{{"1", "aa"}, {"2", "bb"}}), (numbers{{"1", 1}, {"2", 2}}));
  // An older version inserted in front: existing numbers unchanged, the new one gets 3.
  EXPECT_EQ(*db->assign_version_numbers("m", list{{"0.9", "cc"}, {"1", "aa"}, {"2", "bb"}}),
            (numbers{{"0.9", 3}, {"1", 1}, {"2", 2}}));
  // Deleted, then added again: a new number.
  EXPECT_EQ(*db->assign_version_numbers("m", list{{"0.9", "cc"}, {"1", "aa"}}), (numbers{{"0.9", 3}, {"1", 1}}));
  EXPECT_EQ(db->assign_version_numbers("m", list{{"0.9", "cc"}, {"1", "aa"}, {"2", "bb"}})->at("2"), 4u);
  // Same name, other content: a new number.
  EXPECT_EQ(db->assign_version_numbers("m", list{{"0.9", "cc"}, {"1", "zz"}, {"2", "bb"}})->at("1"), 5u);
  // Models are numbered independently; a model removed and re-added continues its counter.
  EXPECT_EQ(db->assign_version_numbers("other", list{{"a", "aa"}})->at("a"), 1u);
  ASSERT_TRUE(db->retain_numbered_models({"other"}));
  EXPECT_EQ(db->assign_version_numbers("m", list{{"1", "zz"}})->at("1"), 6u);
  // Concurrent scans (two replicas) agree on the numbers.
  auto other = this->open_index();
  ASSERT_TRUE(other);
  core::result<numbers> ra = numbers{}, rb = numbers{};
  std::thread ta([&] { ra = db->assign_version_numbers("n", list{{"1", "a"}, {"2", "b"}, {"3", "c"}}); });
  std::thread tb([&] { rb = other->assign_version_numbers("n", list{{"1", "a"}, {"2", "b"}, {"3", "c"}}); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra) << ra.err().what();
  ASSERT_TRUE(rb) << rb.err().what();
  EXPECT_EQ(*ra, *rb);
}

TYPED_TEST(StorageSuite, DeviceStatePagesAndPrunes) {
  auto db = this->open_index();
  ASSERT_TRUE(db);
  db->set_report_limits({3, 10, 100});
  for (int i = 0; i < 12; ++i) {
    auto r = report("d" + std::to_string(i % 6), i % 2 ? "committed" : "failed", 1000 + i);
    r.model = i % 3 ? "a" : "b";
    ASSERT_TRUE(db->insert_report(r));
  }
  server::device_query q;
  q.limit = 4;
  auto page = db->list_devices(q);
  ASSERT_TRUE(page) << page.err().what();
  EXPECT_EQ(page->devices.size(), 4u);
  EXPECT_TRUE(page->more);
  std::uint64_t seen = page->devices.size();
  const auto total = page->total;
  while (page->more) {
    q.after_device = page->devices.back().device_id;
    q.after_model = page->devices.back().model;
    page = db->list_devices(q);
    ASSERT_TRUE(page);
    seen += page->devices.size();
  }
  EXPECT_EQ(seen, total);
  server::device_query failed;
  failed.state = "failed";
  failed.model = "b";
  auto f = db->list_devices(failed);
  ASSERT_TRUE(f);
  for (const auto& d : f->devices) {
    EXPECT_EQ(d.state, "failed");
    EXPECT_EQ(d.model, "b");
  }
  // Per-device history cap (3) applied on insert.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(db->insert_report(report("busy", "downloading", 2000 + i)));
  EXPECT_EQ(db->device_history("busy", 100)->size(), 3u);
  EXPECT_EQ(db->device_history("busy", 100)->front().received_at, 2009);
  // Retention (100 s) drops everything older than now - 100.
  auto pruned = db->prune_reports(2105);
  ASSERT_TRUE(pruned) << pruned.err().what();
  EXPECT_GT(*pruned, 0u);
  auto left = db->list_devices({});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->total, 1u);  // "busy", last seen 2009
}
