// The patch cache against a real SQLite index and real model pairs: one build per pair under
// concurrency, crash recovery, and LRU eviction that never touches a pinned patch.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "server_rig.hpp"

using namespace mallorn;
using mallorn::test::server_rig;

namespace {

server::build_job job_for(server_rig& rig, std::size_t pair) {
  auto cat = rig.store->snapshot();
  const auto* from = cat->find(rig.pairs[pair].model, "1");
  const auto* to = cat->find(rig.pairs[pair].model, "2");
  return {{from->sha256, to->sha256, "standard"}, *from, *to};
}

std::string metric(server_rig& rig, const std::string& line_prefix) {
  auto text = rig.stats.render();
  auto pos = text.find(line_prefix + " ");
  if (pos == std::string::npos) return "";
  auto end = text.find('\n', pos);
  return text.substr(pos + line_prefix.size() + 1, end - pos - line_prefix.size() - 1);
}

}  // namespace

TEST(PatchCache, ConcurrentRequestsForOnePairBuildOnce) {
  server_rig rig;
  auto job = job_for(rig, 0);
  std::vector<std::thread> devices;
  for (int i = 0; i < 16; ++i)
    devices.emplace_back([&] {
      for (int k = 0; k < 20; ++k) (void)rig.cache->request(job);
    });
  for (auto& t : devices) t.join();
  auto done = rig.cache->wait(job.key, std::chrono::minutes(2));
  ASSERT_EQ(done.state, server::build_state::ready) << done.error;
  EXPECT_EQ(metric(rig, "mallornd_builds_total{result=\"ok\"}"), "1");
  EXPECT_EQ(rig.cache->count(), 1u);
}

TEST(PatchCache, RecoveryDropsEverythingHalfWritten) {
  server_rig rig;
  auto job = job_for(rig, 0);
  (void)rig.cache->request(job);
  auto done = rig.cache->wait(job.key, std::chrono::minutes(2));
  ASSERT_EQ(done.state, server::build_state::ready);
  const std::string good_id = done.patch->id;
  rig.cache->stop();

  const auto dir = rig.dir / "patches";
  // What a kill -9 can leave: a build in progress, a temp file of the atomic writer, a
  // published file whose row never made it, and a row whose file is truncated.
  std::ofstream(dir / ".build-0123-4567.mlrn") << "partial";
  std::ofstream(dir / ".build-0123-4567.mlrn.tmp-abc123") << "partial";
  const std::string orphan(64, 'b');
  std::ofstream(dir / (orphan + ".mlrn")) << "no row";
  server::patch_row ghost = *done.patch;
  ghost.id = std::string(64, 'c');
  ghost.source_sha256 = std::string(64, 'd');
  ASSERT_TRUE(rig.db->insert_patch(ghost).ok());
  std::ofstream(dir / (ghost.id + ".mlrn")) << "short";

  server::cache_options opts;
  opts.dir = dir;
  server::patch_cache reopened(*rig.db, opts, rig.stats);
  ASSERT_TRUE(reopened.open().ok());
  EXPECT_EQ(reopened.count(), 1u);
  EXPECT_TRUE(reopened.find_by_id(good_id));
  EXPECT_FALSE(reopened.find_by_id(ghost.id));
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{good_id + ".mlrn"});
  EXPECT_EQ(rig.db->all_patches()->size(), 1u);
}

TEST(PatchCache, EvictsLeastRecentlyUsedButNeverAPinnedPatch) {
  server::cache_options opts;
  opts.budget_bytes = 1;  // every new patch pushes the others out
  server_rig rig({}, opts);
  auto first = job_for(rig, 0);
  (void)rig.cache->request(first);
  auto a = rig.cache->wait(first.key, std::chrono::minutes(2));
  ASSERT_EQ(a.state, server::build_state::ready);
  auto pin = rig.cache->pin(a.patch->id);  // a download in progress

  auto second = job_for(rig, 1);
  (void)rig.cache->request(second);
  auto b = rig.cache->wait(second.key, std::chrono::minutes(2));
  ASSERT_EQ(b.state, server::build_state::ready);
  EXPECT_TRUE(rig.cache->find_by_id(a.patch->id)) << "a pinned patch was evicted";
  EXPECT_TRUE(std::filesystem::exists(rig.cache->file_of(a.patch->id)));

  pin.reset();
  (void)rig.cache->request(first);  // ready: no rebuild, no eviction pass
  // A third build triggers eviction: now the unpinned older ones go.
  rig.cache->record_download(b.patch->id, 10);
  ASSERT_EQ(rig.cache->count(), 2u);
  // Rebuild after deleting: evict happens after each build, so force one by requesting a pair
  // in the other direction (2 -> 1 is a different key).
  server::build_job back{{second.key.target_sha256, second.key.source_sha256, "standard"}, second.target, second.source};
  (void)rig.cache->request(back);
  auto c = rig.cache->wait(back.key, std::chrono::minutes(2));
  ASSERT_EQ(c.state, server::build_state::ready);
  EXPECT_EQ(rig.cache->count(), 1u);
  EXPECT_TRUE(rig.cache->find_by_id(c.patch->id));
  EXPECT_FALSE(std::filesystem::exists(rig.cache->file_of(a.patch->id)));
  EXPECT_EQ(rig.db->all_patches()->size(), 1u);
}
