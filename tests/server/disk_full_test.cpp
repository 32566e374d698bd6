// A full data disk (issue 11 item 4): mallornd runs read-only instead of failing. The probe is
// injected here (disk_guard's space_probe) to make the disk "full" without filling one; the last
// test fills a real 4 MiB tmpfs under the real daemon (root only).
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mallorn/server/disk_guard.hpp"
#include "server_rig.hpp"
#include "support/daemon_process.hpp"
#include "support/daemon_store_rig.hpp"
#include "support/curl_call.hpp"

using namespace mallorn;
using mallorn::test::server_rig;
using nlohmann::json;

namespace {

// The free space tests decide.
struct fake_probe : server::space_probe {
  std::atomic<std::uint64_t> free{1ull << 40};
  std::optional<std::uint64_t> free_bytes(const std::filesystem::path&) const override { return free.load(); }
};

const std::string admin_token = "disk-full-admin-token-0123";

server::router_config config_with(server::disk_guard& guard) {
  server::router_config c;
  c.admin_token = admin_token;
  c.disk = &guard;
  return c;
}

}  // namespace

TEST(DiskGuard, DegradesBelowMinFreeAndRecoversWhenSpaceReturns) {
  test::temp_dir dir("disk-guard");
  auto probe = std::make_shared<fake_probe>();
  const auto reserve = dir / "reserve";
  server::disk_guard guard({dir.path()}, 10 << 20, probe, reserve, 1 << 16);
  EXPECT_FALSE(guard.refresh());
  // With room, the reserve is written (real bytes, its full size).
  ASSERT_TRUE(std::filesystem::exists(reserve));
  EXPECT_EQ(std::filesystem::file_size(reserve), 1u << 16);
  EXPECT_TRUE(guard.has_room_for(1 << 20));

  probe->free = 3 << 20;
  EXPECT_TRUE(guard.refresh());
  EXPECT_TRUE(guard.degraded());
  EXPECT_EQ(guard.free_bytes(), 3u << 20);
  EXPECT_FALSE(std::filesystem::exists(reserve)) << "a full disk releases the reserve for the index";
  EXPECT_FALSE(guard.has_room_for(0));

  probe->free = (10 << 20) + 1000;  // above min_free, but not with the released reserve back
  EXPECT_TRUE(guard.refresh());
  probe->free = 20 << 20;
  EXPECT_FALSE(guard.refresh());
  EXPECT_TRUE(std::filesystem::exists(reserve)) << "the reserve comes back with the space";

  // A writer's ENOSPC degrades at once; the next probe with room clears it.
  guard.note_full("a test write");
  EXPECT_TRUE(guard.degraded());
  EXPECT_FALSE(guard.refresh());
  // min_free 0 still treats 0 bytes as full.
  server::disk_guard zero({dir.path()}, 0, probe);
  probe->free = 0;
  EXPECT_TRUE(zero.refresh());
}

// Read-only mode: what was built is still served; nothing new is written; every refusal is a
// 503 with Retry-After and a stable code; it all comes back by itself when space returns.
TEST(DiskGuard, ReadOnlyRouterServesWhatItHasAndRefusesWrites) {
  auto probe = std::make_shared<fake_probe>();
  server::disk_guard guard({"/"}, 1 << 20, probe);  // the probe decides for any directory
  server_rig rig(config_with(guard));
  const auto& built = rig.pairs[1];    // the small tflite pair: a quick build
  const auto& unbuilt = rig.pairs[0];
  auto ready = rig.ready_update(built.v1);
  ASSERT_EQ(ready["status"], "ready");

  probe->free = 1000;
  ASSERT_TRUE(guard.refresh());
  // check-update and the download of an existing patch go on.
  auto again = rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(built.v1)}}.dump());
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(json::parse(again.body)["patch_id"], ready["patch_id"]);
  EXPECT_EQ(rig.call("GET", "/patch/" + ready["patch_id"].get<std::string>()).status, 200u);
  EXPECT_EQ(rig.call("GET", "/model/" + built.model + "/2").status, 200u);
  // A pair that needs a build: busy, with the code and a Retry-After; no build is queued.
  auto needs_build = rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(unbuilt.v1)}}.dump());
  ASSERT_EQ(needs_build.status, 503u) << needs_build.body;
  ASSERT_NE(needs_build.header("Retry-After"), nullptr);
  auto busy = json::parse(needs_build.body);
  EXPECT_EQ(busy["status"], "busy");
  EXPECT_EQ(busy["code"], "disk_full");
  EXPECT_EQ(rig.cache->queued() + rig.cache->running(), 0u);
  auto create = rig.call("POST", "/create-patch?model=" + unbuilt.model + "&source_version=1&target_version=2", "",
                         {{"authorization", "Bearer " + admin_token}});
  EXPECT_EQ(create.status, 503u);
  EXPECT_EQ(json::parse(create.body)["error"]["code"], "disk_full");
  // Reports and uploads are refused, and nothing is stored.
  const std::string report = json{{"device_id", "dev-1"}, {"state", "idle"}}.dump();
  auto refused = rig.call("POST", "/report", report);
  EXPECT_EQ(refused.status, 503u);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "disk_full");
  ASSERT_NE(refused.header("Retry-After"), nullptr);
  EXPECT_TRUE(rig.db->latest_reports("dev-1")->empty());
  auto upload = rig.call("PUT", "/admin/models/" + built.model + "/9", "x",
                         {{"authorization", "Bearer " + admin_token}, {"content-length", "1"}});
  EXPECT_EQ(upload.status, 503u);
  EXPECT_EQ(json::parse(upload.body)["error"]["code"], "disk_full");
  EXPECT_TRUE(upload.close) << "refused before its body is read";
  // /healthz says so (and stays 200: reads are served).
  auto health = rig.call("GET", "/healthz");
  EXPECT_EQ(health.status, 200u);
  auto h = json::parse(health.body);
  EXPECT_EQ(h["status"], "read_only");
  EXPECT_EQ(h["disk"]["read_only"], true);
  EXPECT_EQ(h["disk"]["free_bytes"], 1000);

  probe->free = 1ull << 40;
  EXPECT_FALSE(guard.refresh());
  EXPECT_EQ(rig.call("POST", "/report", report).status, 200u);
  EXPECT_EQ(json::parse(rig.call("GET", "/healthz").body)["status"], "ok");
  // Not read-only, but this upload alone would leave less than min_free: 507 before its body.
  auto too_big = rig.call("PUT", "/admin/models/" + built.model + "/9", "",
                          {{"authorization", "Bearer " + admin_token}, {"content-length", std::to_string(1ull << 41)}});
  EXPECT_EQ(too_big.status, 507u) << too_big.body;
  // Builds are taken again.
  auto queued = rig.call("POST", "/check-update", json{{"sha256", server_rig::sha_of(unbuilt.v1)}}.dump());
  EXPECT_TRUE(queued.status == 202u || queued.status == 200u) << queued.body;
}

// A build refused for want of space (--min-free) is transient: the device hears "busy, retry",
// never full_only, and the pair builds as soon as there is room.
TEST(DiskGuard, ABuildRefusedForSpaceIsNotRememberedAsFailed) {
  auto probe = std::make_shared<fake_probe>();
  probe->free = 1000;
  server::cache_options copts;
  copts.min_free = 1 << 20;
  copts.space = probe;
  server_rig rig({}, copts, 0, {"tfm-hello-world-int8"});
  const std::string body = json{{"sha256", server_rig::sha_of(rig.pairs[0].v1)}}.dump();
  ASSERT_EQ(rig.call("POST", "/check-update", body).status, 202u);
  server::http_response r;
  for (int i = 0; i < 600; ++i) {
    r = rig.call("POST", "/check-update", body);
    if (r.status != 202u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(json::parse(r.body)["status"], "busy");
  EXPECT_NE(json::parse(r.body)["status"], "full_only");
  probe->free = 1ull << 40;
  std::this_thread::sleep_for(copts.transient_backoff);  // then the pair is tried again
  EXPECT_EQ(rig.ready_update(rig.pairs[0].v1)["status"], "ready");
}

namespace {

using test::curl;

// Polls until `pred` holds (generous: CI is a loaded 2-core machine).
template <class F>
bool eventually(F pred) {
  for (int i = 0; i < 1200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

struct tmpfs_mount {
  std::filesystem::path dir;
  bool mounted = false;
  tmpfs_mount(std::filesystem::path d, const char* options) : dir(std::move(d)) {
    std::filesystem::create_directories(dir);
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options) == 0;
  }
  ~tmpfs_mount() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};

// Writes until the filesystem refuses (ENOSPC).
void fill(const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary);
  const std::string block(4096, 'F');
  while (out.write(block.data(), block.size()) && out.flush()) {
  }
}

}  // namespace

// The real thing: --data on a 4 MiB tmpfs that fills up. mallornd goes read-only while running,
// starts again on the full disk, serves the patch it built, refuses reports, and recovers by
// itself once the filler is deleted.
TEST(DiskGuard, RealDaemonStartsAndServesOnAFullTmpfs) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs (CI runs as root)";
  test::daemon_store_rig r("diskfull", admin_token);
  tmpfs_mount data(r.dir / "data", "size=4m,mode=0700");
  if (!data.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (no CAP_SYS_ADMIN in this container)";
  const auto args = r.args({"--min-free", "512K", "--patches", (r.dir / "data" / "patches").string()});
  const std::string sha = core::to_hex(*core::sha256_of_file(r.pairs[1].v1));  // the small tflite pair
  const std::string check = "-X POST -d '{\"sha256\":\"" + sha + "\"}' ";
  const std::string report = "-X POST -d '{\"device_id\":\"dev-1\",\"state\":\"idle\"}' ";
  std::string patch_id;
  {
    test::daemon_process d(r.dir.path(), args);
    ASSERT_TRUE(d.listening()) << d.log();
    ASSERT_TRUE(eventually([&] {
      auto c = curl(check + d.url("/check-update"));
      if (c.status != 200) return false;
      patch_id = json::parse(c.body)["patch_id"].get<std::string>();
      return true;
    })) << d.log();
    EXPECT_TRUE(std::filesystem::exists(r.dir / "data" / ".mallornd-reserve"));
    fill(r.dir / "data" / "filler");
    ASSERT_TRUE(eventually([&] { return json::parse(curl(d.url("/healthz")).body)["status"] == "read_only"; }))
        << d.log();
    EXPECT_EQ(curl(report + d.url("/report")).status, 503);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait_exit(std::chrono::seconds(60)), 0) << d.log();
  }
  // The worst start: no room even for SQLite's shared-memory file (as after a shutdown that
  // removed it; it is rebuilt from the WAL), and whatever the shutdown freed is taken too.
  std::filesystem::remove(r.dir / "data" / "index.sqlite-shm");
  fill(r.dir / "data" / "filler2");
  test::daemon_process d(r.dir.path(), args);
  ASSERT_TRUE(d.listening()) << "mallornd must start on a full disk:\n" << d.log();
  EXPECT_NE(d.log().find("read-only mode"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("exclusive mode"), std::string::npos) << d.log();
  auto c = curl(check + d.url("/check-update"));
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["patch_id"], patch_id);
  EXPECT_EQ(curl("-o /dev/null " + d.url("/patch/" + patch_id)).status, 200);
  auto refused = curl(report + d.url("/report"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "disk_full");
  auto health = curl(d.url("/healthz"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "read_only") << health.body;
  auto metrics = curl(d.url("/metrics")).body;
  EXPECT_NE(metrics.find("mallornd_disk_read_only 1"), std::string::npos);

  std::filesystem::remove(r.dir / "data" / "filler");
  std::filesystem::remove(r.dir / "data" / "filler2");
  ASSERT_TRUE(eventually([&] { return curl(report + d.url("/report")).status == 200; })) << d.log();
  EXPECT_EQ(json::parse(curl(d.url("/healthz")).body)["status"], "ok");
  EXPECT_NE(d.log().find("leaving read-only mode"), std::string::npos);
}
