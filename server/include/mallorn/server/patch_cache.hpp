// The patch cache: content-addressed patch files under one directory, indexed in SQLite, built on
// demand by a small bounded pool (one build per pair however many devices ask), evicted LRU
// under a size budget (never while a download holds a pin).
//
// Crash safety: a build writes "<dir>/.build-<owner>-*" (itself written temp + fsync + rename),
// is verified by applying it, is renamed to "<dir>/<sha256>.mlrn" and fsynced, and only then gets
// its index row. open() deletes this owner's build leftovers, rows whose file is missing or short,
// and files without a row — so a kill -9 at any instant leaves nothing half-written that could be
// served.
//
// Several replicas (docs/scaling.md) share the index database and the directory. A build is
// claimed in the build_jobs table with a lease renewed while it runs, so one replica builds a pair
// however many ask; the others answer "building" until the row appears and adopt it then, and take
// the build over when the builder's lease runs out (it died). A shared directory holds other
// replicas' files in flight: open() only removes other owners' leftovers and unindexed files older
// than `orphan_age`. Eviction removes a row only while no replica pins it (patch_pins), then the file.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"
#include "mallorn/server/disk_guard.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/metrics.hpp"
#include "mallorn/server/model_store.hpp"

namespace mallorn::server {

struct build_key {
  std::string source_sha256, target_sha256, profile;
  auto operator<=>(const build_key&) const = default;
};

struct build_job {
  build_key key;
  model_version source, target;
};

struct cache_options {
  std::filesystem::path dir;
  std::uint64_t budget_bytes = 0;  // 0 = unlimited
  unsigned build_threads = 1;
  std::size_t queue_limit = 16;    // builds waiting for a thread; more -> queue_full
  int level = 19;
  bool neural = true;
  std::optional<core::ed25519_private_key> signing_key;
  std::chrono::seconds failure_backoff{60};  // a failed pair is not retried before this
  // A build that failed for want of descriptors, space or a working disk (core::error::
  // is_transient) says nothing about the pair: it is retried after this much shorter pause, and
  // callers answer "busy, retry" rather than "cannot be patched".
  std::chrono::seconds transient_backoff{5};
  // A build needs this much free space beyond the two models' size on the patch directory's disk
  // (a patch is at most about as large as its target); 0: no check.
  std::uint64_t min_free = 0;
  std::shared_ptr<const space_probe> space;  // how free space is measured (nullptr: statvfs)
  // This replica's name in build claims, pins and temp file names ([A-Za-z0-9._-], unique per replica).
  std::string owner = "local";
  // A claim or pin not renewed for this long is void (its replica died); renewed every third of it.
  std::chrono::seconds lease{30};
  // Several replicas share the directory and the index (PostgreSQL): look up patches others
  // published, pin downloads in the database, and at open remove other owners' temp files and
  // unindexed patches only once older than `orphan_age` (they may be a build being published).
  // Not shared: the directory is this process's alone and open() removes whatever it does not know.
  bool shared = false;
  std::chrono::seconds orphan_age{3600};
  // Tests only: each build pauses this long after writing its temp file (a slow build to kill).
  std::chrono::milliseconds build_delay{0};
};

enum class build_state { ready, queued, running, queue_full, failed };
const char* build_state_name(build_state s);

// What the cache is doing, for operators (GET /admin/builds, the dashboard's Patches page).
struct cache_activity {
  struct build {
    std::string model, source_version, target_version, profile, state;  // state: queued | running
  };
  struct failure {
    std::string model, source_version, target_version, profile, error;
    std::int64_t seconds_ago = 0;
  };
  struct eviction {
    patch_row patch;
    std::int64_t evicted_at = 0;  // unix seconds
  };
  std::vector<build> builds;
  std::vector<failure> failures;
  std::vector<eviction> evictions;  // newest first; the last `max_evictions_kept`
  static constexpr std::size_t max_evictions_kept = 50;
};

struct build_status {
  build_state state = build_state::queued;
  std::optional<patch_row> patch;  // when ready
  std::string error;               // when failed: for the log, may name server paths
  bool transient = false;          // when failed: out of resources, retry after transient_backoff
};

class patch_cache {
 public:
  patch_cache(index_db& db, cache_options opts, metrics& m);
  ~patch_cache();
  patch_cache(const patch_cache&) = delete;
  patch_cache& operator=(const patch_cache&) = delete;

  // Recovers the directory after a crash (see above), loads the index and starts the workers.
  core::result<void> open();
  // Stops taking builds and waits for running ones.
  void stop();

  std::optional<patch_row> find(const build_key& key) const;
  // Shared: a patch another replica published is looked up in the index on a miss.
  std::optional<patch_row> find_by_id(const std::string& id);
  // The patches this replica knows, from memory only (no index lookup: for the I/O threads).
  std::optional<patch_row> find_local(const std::string& id) const;
  std::vector<patch_row> list() const;
  std::filesystem::path file_of(const std::string& id) const { return opts_.dir / (id + ".mlrn"); }
  const std::filesystem::path& dir() const { return opts_.dir; }
  bool shared() const { return opts_.shared; }  // several replicas share the index and directory

  // Ready -> the patch; otherwise queues the build unless it is queued, running, recently failed
  // or the queue is full. Never blocks on a build.
  build_status request(const build_job& job);
  // Waits until the pair's build is neither queued nor running, up to `timeout`.
  build_status wait(const build_key& key, std::chrono::milliseconds timeout);

  // Holds the patch against eviction (by any replica) while the returned handle lives.
  std::shared_ptr<void> pin(const std::string& id);
  // Whether pin(id) would write the index: shared, no download of it running here, and this
  // replica's pin row on it holds for less than half a lease (a row that holds longer outlives
  // the renewer's next pass, which renews it while the download runs).
  bool pin_writes_index(const std::string& id) const;
  // Re-reads the shared index: patches other replicas built or evicted (called every few seconds).
  core::result<void> sync();
  // Download accounting (kept in memory, written by flush_usage()).
  void record_download(const std::string& id, std::uint64_t bytes);
  core::result<void> flush_usage();

  cache_activity activity() const;
  std::size_t queued() const;
  std::size_t running() const;
  std::uint64_t total_bytes() const;
  std::size_t count() const;
  // Changes whenever a patch is added or evicted (answers derived from the cache are stale then).
  std::uint64_t generation() const { return generation_.load(); }

 private:
  void worker();
  core::result<patch_row> build(const build_job& job);
  void evict_over_budget(const std::string& keep_id);
  build_status status_locked(const build_key& key) const;
  // Shared-index helpers (several replicas): a row another replica published, if its file is whole.
  std::optional<patch_row> adopt(core::result<std::optional<patch_row>> row, std::optional<std::uint64_t> target_number);
  bool built_elsewhere(const build_key& key);  // another replica holds an unexpired claim
  void renewer();
  std::string job_name(const build_key& key) const;

  index_db& db_;
  cache_options opts_;
  metrics& metrics_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::map<build_key, patch_row> ready_;
  std::map<std::string, build_key> by_id_;
  std::deque<build_job> queue_;
  std::map<build_key, build_state> in_flight_;  // queued or running
  std::map<build_key, build_job> running_;      // for activity()
  struct failure {
    std::string error;
    std::chrono::steady_clock::time_point when;
    bool transient = false;
    std::string model, source_version, target_version;
  };
  std::deque<cache_activity::eviction> evictions_;
  std::map<build_key, failure> failures_;
  std::map<std::string, int> pins_;
  std::map<std::string, std::int64_t> pinned_until_;  // shared: until when this replica's pin rows hold
  struct usage {
    std::uint64_t hits = 0, bytes = 0;
  };
  std::map<std::string, usage> usage_;
  std::uint64_t total_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<std::uint64_t> generation_{0};
  std::vector<std::thread> workers_;
  std::thread renewer_;
  std::condition_variable renew_cv_;
};

}  // namespace mallorn::server
