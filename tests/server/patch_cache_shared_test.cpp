// Two patch caches sharing one index and one directory, as two replicas do (docs/scaling.md), in
// one process: a patch one builds the other adopts without building, a claim held elsewhere is
// answered "building", and eviction spares a patch the other replica is serving.
#include <gtest/gtest.h>

#include <ctime>
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

server::cache_options shared(const std::string& owner, std::uint64_t budget = 0) {
  server::cache_options o;
  o.shared = true;
  o.owner = owner;
  o.budget_bytes = budget;
  o.lease = std::chrono::seconds(1);
  return o;
}

// Replica "b": its own connection to the rig's index and its own cache on the same directory.
struct second_replica {
  std::unique_ptr<server::index_db> db;
  server::metrics stats;
  std::unique_ptr<server::patch_cache> cache;
  second_replica(server_rig& rig, server::cache_options o) {
    db = std::move(server::index_db::open(rig.dir / "index.sqlite").value());
    o.dir = rig.dir / "patches";
    o.level = 3;
    o.neural = false;
    cache = std::make_unique<server::patch_cache>(*db, o, stats);
    EXPECT_TRUE(cache->open().ok());
  }
};

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

TEST(PatchCacheShared, AReplicaAdoptsWhatAnotherBuiltAndAnswersBuildingWhileItBuilds) {
  server_rig rig({}, shared("a"));
  second_replica b(rig, shared("b"));
  auto job = job_for(rig, 0);
  const std::string name = job.key.source_sha256 + ":" + job.key.target_sha256 + ":standard";

  // Someone else holds the claim: b answers "building" and queues nothing.
  ASSERT_TRUE(*rig.db->claim_build(name, "elsewhere", now(), 60));
  EXPECT_EQ(b.cache->request(job).state, server::build_state::running);
  EXPECT_EQ(b.cache->queued() + b.cache->running(), 0u);
  ASSERT_TRUE(rig.db->finish_build(name, "elsewhere"));

  ASSERT_EQ(rig.cache->request(job).state, server::build_state::queued);
  auto built = rig.cache->wait(job.key, std::chrono::minutes(2));
  ASSERT_EQ(built.state, server::build_state::ready);
  auto adopted = b.cache->request(job);
  ASSERT_EQ(adopted.state, server::build_state::ready);
  EXPECT_EQ(adopted.patch->id, built.patch->id);
  EXPECT_EQ(b.stats.render().find("mallornd_builds_total{result=\"ok\"} 1"), std::string::npos) << "b built it too";
  EXPECT_NE(rig.stats.render().find("mallornd_builds_total{result=\"ok\"} 1"), std::string::npos);
  EXPECT_FALSE(rig.db->build_owner(name, now())->has_value());
  // GET /patch/<id> on a replica that never saw the row: found in the index.
  second_replica c(rig, shared("c"));
  ASSERT_TRUE(c.cache->sync());
  EXPECT_TRUE(c.cache->find_by_id(built.patch->id));
}

TEST(PatchCacheShared, EvictionSparesAPatchAnotherReplicaIsServing) {
  server_rig rig({}, shared("a", 1));  // every new patch pushes the others out
  second_replica b(rig, shared("b"));
  auto first = job_for(rig, 0);
  (void)rig.cache->request(first);
  auto a = rig.cache->wait(first.key, std::chrono::minutes(2));
  ASSERT_EQ(a.state, server::build_state::ready);
  ASSERT_TRUE(b.cache->find_by_id(a.patch->id));
  auto serving = b.cache->pin(a.patch->id);  // a download in progress on b

  auto second = job_for(rig, 1);
  (void)rig.cache->request(second);
  ASSERT_EQ(rig.cache->wait(second.key, std::chrono::minutes(2)).state, server::build_state::ready);
  EXPECT_TRUE(rig.db->find_patch_by_id(a.patch->id)->has_value()) << "a patch pinned on b was evicted by a";
  EXPECT_TRUE(std::filesystem::exists(rig.cache->file_of(a.patch->id)));

  // b's download ends; its pin lapses after the lease (1 s): the next eviction may take it.
  serving.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  server::build_job back{{second.key.target_sha256, second.key.source_sha256, "standard"}, second.target, second.source};
  (void)rig.cache->request(back);
  ASSERT_EQ(rig.cache->wait(back.key, std::chrono::minutes(2)).state, server::build_state::ready);
  EXPECT_FALSE(rig.db->find_patch_by_id(a.patch->id)->has_value());
  EXPECT_FALSE(std::filesystem::exists(rig.cache->file_of(a.patch->id)));
  // b learns of the eviction at its next sync.
  ASSERT_TRUE(b.cache->sync());
  EXPECT_FALSE(b.cache->find_by_id(a.patch->id));
}
