// The real mallornd on a real PostgreSQL (tests/support/postgres_server.hpp) and on a tiny full
// filesystem, driven by real curl: a database restart under a running daemon (503 + Retry-After
// meanwhile, recovery after), two replicas sharing one database, and a data disk that fills up.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/storage/sql_database.hpp"
#include "support/daemon_process.hpp"
#include "support/model_store_fixture.hpp"
#include "support/postgres_server.hpp"
#include "support/shell.hpp"
#include "support/temp_dir.hpp"

using namespace mallorn;
using namespace mallorn::test;
using json = nlohmann::json;

namespace {

struct reply {
  int status = 0;
  std::string body, headers;
};

reply curl(const std::string& args) {
  temp_dir tmp("curlh");
  auto r = run_shell("curl -s -D " + (tmp / "h").string() + " -w '\\n%{http_code}' " + args + " 2>/dev/null");
  reply out;
  auto nl = r.out.rfind('\n');
  out.body = nl == std::string::npos ? "" : r.out.substr(0, nl);
  out.status = std::atoi(r.out.c_str() + (nl == std::string::npos ? 0 : nl + 1));
  std::ifstream h(tmp / "h");
  std::stringstream ss;
  ss << h.rdbuf();
  out.headers = ss.str();
  for (auto& c : out.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

reply post(const daemon_process& d, const std::string& path, const json& body) {
  return curl("-X POST -H 'Content-Type: application/json' -d '" + body.dump() + "' " + d.url(path));
}

std::string sha_of(const std::filesystem::path& p) { return core::to_hex(*core::sha256_of_file(p)); }

const char* const token = "storage-test-admin-token-0123";

struct daemon_dirs {
  temp_dir dir{"stor-daemon"};
  std::vector<stored_pair> pairs;
  daemon_dirs() {
    std::filesystem::create_directories(dir / "models");
    pairs = make_store(dir / "models", {"tfm-hello-world-int8"});
    std::ofstream(dir / "token") << token << "\n";
  }
  std::vector<std::string> args(const std::string& data, const std::string& database) const {
    std::vector<std::string> a = {"--models", (dir / "models").string(), "--data", data, "--admin-token-file",
                                  (dir / "token").string(), "--rate-limit", "0", "--level", "3", "--no-neural"};
    if (!database.empty()) a.insert(a.end(), {"--database", database});
    return a;
  }
};

}  // namespace

TEST(StorageDaemon, PostgresRestartAnswers503ThenRecovers) {
  auto& pg = postgres_server::shared();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.create_database(&name);
  ASSERT_FALSE(url.empty()) << pg.error();
  // A password in the URL (trust authentication ignores it) must never reach the log.
  const std::string with_password = pg.url_with_password(name, "s3cretpw");
  daemon_dirs d;
  daemon_process daemon(d.dir.path(), d.args((d.dir / "data").string(), with_password));
  ASSERT_TRUE(daemon.listening()) << daemon.log();

  auto health = curl(daemon.url("/healthz"));
  ASSERT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(json::parse(health.body)["database"]["backend"], "postgresql");
  ASSERT_EQ(post(daemon, "/report", {{"device_id", "cam-1"}, {"state", "downloading"}}).status, 200);
  // The row is in PostgreSQL (not in a SQLite file).
  auto rows = pg.psql(name, "SELECT state FROM device_state WHERE device_id='cam-1'");
  EXPECT_EQ(rows.out, "downloading\n");
  EXPECT_FALSE(std::filesystem::exists(d.dir / "data" / "index.sqlite"));
  auto check = post(daemon, "/check-update", {{"sha256", sha_of(d.pairs[0].v1)}});
  EXPECT_TRUE(check.status == 200 || check.status == 202) << check.body;
  EXPECT_EQ(json::parse(check.body)["target_number"], 2);

  pg.stop();
  auto down = curl(daemon.url("/healthz"));
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(json::parse(down.body)["status"], "database_unreachable");
  EXPECT_NE(down.headers.find("retry-after:"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto r = post(daemon, "/report", {{"device_id", "cam-1"}, {"state", "applying"}});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.headers.find("retry-after: 5"), std::string::npos) << r.headers;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  }
  auto devices = curl("-H 'Authorization: Bearer " + std::string(token) + "' " + daemon.url("/admin/devices"));
  EXPECT_EQ(devices.status, 503);
  // Devices still learn what to run: check-update is answered from memory.
  auto during = post(daemon, "/check-update", {{"sha256", sha_of(d.pairs[0].v1)}});
  EXPECT_TRUE(during.status == 200 || during.status == 202) << during.body;

  pg.start();
  ASSERT_TRUE(pg.ok()) << pg.error();
  int status = 0;
  for (int i = 0; i < 20 && status != 200; ++i) {
    status = curl(daemon.url("/healthz")).status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(post(daemon, "/report", {{"device_id", "cam-1"}, {"state", "committed"}}).status, 200);
  EXPECT_TRUE(daemon.running());
  const auto log = daemon.log();
  EXPECT_EQ(log.find("s3cretpw"), std::string::npos) << "the password leaked into the log";
  EXPECT_NE(log.find("postgresql://mallorn@"), std::string::npos) << log;
}

TEST(StorageDaemon, TwoReplicasShareReportsAndVersionNumbers) {
  auto& pg = postgres_server::shared();
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string name;
  const std::string url = pg.create_database(&name);
  daemon_dirs d;
  // Started together: the migrations run once (advisory lock), both number the store alike.
  daemon_process a(d.dir.path() / "", d.args((d.dir / "data-a").string(), url));
  std::filesystem::create_directories(d.dir / "b");
  daemon_process b(d.dir / "b", d.args((d.dir / "data-b").string(), url));
  ASSERT_TRUE(a.listening()) << a.log();
  ASSERT_TRUE(b.listening()) << b.log();
  ASSERT_EQ(post(a, "/report", {{"device_id", "seen-by-a"}, {"state", "committed"}, {"model", "m"}}).status, 200);
  auto on_b = curl("-H 'Authorization: Bearer " + std::string(token) + "' " + b.url("/admin/devices/seen-by-a"));
  ASSERT_EQ(on_b.status, 200) << on_b.body;
  EXPECT_EQ(json::parse(on_b.body)["devices"][0]["state"], "committed");
  auto fa = json::parse(curl(a.url("/fingerprint/tfm-hello-world-int8/2")).body);
  auto fb = json::parse(curl(b.url("/fingerprint/tfm-hello-world-int8/2")).body);
  EXPECT_EQ(fa["number"], 2);
  EXPECT_EQ(fb["number"], 2);
  // Every index migration applied exactly once (other features add their own numbers too).
  std::string versions;
  for (const auto& m : server::index_db::migrations()) versions += (versions.empty() ? "" : ",") + std::to_string(m.version);
  auto migrations = pg.psql(name, "SELECT COUNT(*) FROM schema_migrations WHERE version IN (" + versions + ")");
  EXPECT_EQ(migrations.out, std::to_string(server::index_db::migrations().size()) + "\n");
}

TEST(StorageDaemon, FullDataDiskKeepsServingAndRecovers) {
  daemon_dirs d;
  const auto data = d.dir / "data";
  std::filesystem::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=2m") != 0)
    GTEST_SKIP() << "cannot mount a 2 MB tmpfs here (" << std::strerror(errno)
                 << "); this test needs root or CAP_SYS_ADMIN";
  struct unmount {
    std::filesystem::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } cleanup{data};
  std::vector<std::string> args = d.args(data.string(), "");
  args.insert(args.end(), {"--min-free", "256K", "--report-history", "2"});
  {
    daemon_process daemon(d.dir.path(), args);
    ASSERT_TRUE(daemon.listening()) << daemon.log();
    // 300 reports with 4 KB errors from 30 ids: bounded by the caps, not by the disk (before,
    // 79 such reports filled this disk). Every one is stored.
    for (int i = 0; i < 300; ++i) {
      auto r = post(daemon, "/report", {{"device_id", "spoof-" + std::to_string(i % 30)}, {"state", "failed"},
                                        {"error", std::string(4000, 'e')}});
      ASSERT_EQ(r.status, 200) << i << " " << r.body << daemon.log().substr(0, 3000);
    }
    // Fill what is left.
    run_shell("dd if=/dev/zero of=" + (data / "filler").string() + " bs=16k 2>/dev/null");
    int unavailable = 0;
    for (int i = 0; i < 50; ++i) {
      auto r = post(daemon, "/report", {{"device_id", "late-" + std::to_string(i)}, {"state", "failed"},
                                        {"error", std::string(4000, 'x')}});
      ASSERT_TRUE(r.status == 503 || r.status == 200) << r.body;  // never a 500
      if (r.status == 503) {
        ++unavailable;
        EXPECT_NE(r.headers.find("retry-after"), std::string::npos);
      }
    }
    EXPECT_GT(unavailable, 0) << "the disk never filled up";
    // check-update still answers; the build is refused for lack of space, as a passing state
    // (503 busy, disk_full), never remembered as full_only (docs/api.md "Full disk").
    auto check = post(daemon, "/check-update", {{"sha256", sha_of(d.pairs[0].v1)}});
    for (int i = 0; i < 600 && check.status == 202; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      check = post(daemon, "/check-update", {{"sha256", sha_of(d.pairs[0].v1)}});
    }
    ASSERT_EQ(check.status, 503) << check.body;
    EXPECT_EQ(json::parse(check.body)["status"], "busy") << check.body;
    EXPECT_NE(check.headers.find("retry-after"), std::string::npos);
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait_exit(std::chrono::seconds(20)), 0);
  }
  // A restart on the full disk works (read-only mode; docs/api.md "Full disk"). The clean
  // shutdown checkpointed the WAL and freed its room: fill that too.
  run_shell("dd if=/dev/zero of=" + (data / "filler2").string() + " bs=4k 2>/dev/null");
  {
    daemon_process daemon(d.dir.path(), args);
    ASSERT_TRUE(daemon.listening()) << daemon.log();
    EXPECT_EQ(curl(daemon.url("/healthz")).status, 200);
    auto check = post(daemon, "/check-update", {{"sha256", sha_of(d.pairs[0].v1)}});
    EXPECT_EQ(check.status, 503) << check.body;
    EXPECT_EQ(post(daemon, "/report", {{"device_id", "full"}, {"state", "committed"}}).status, 503);
    // Space returns: reports are taken again without a restart (the disk is probed every second).
    std::filesystem::remove(data / "filler");
    std::filesystem::remove(data / "filler2");
    int status = 0;
    for (int i = 0; i < 600 && status != 200; ++i) {
      status = post(daemon, "/report", {{"device_id", "after"}, {"state", "committed"}}).status;
      if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(status, 200) << daemon.log();
  }
}
