#include "mallorn/server/patch_cache.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <set>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/formats/differ.hpp"
#include "mallorn/formats/mcu_patch.hpp"
#include "mallorn/server/request_path.hpp"

namespace mallorn::server {
namespace fs = std::filesystem;

const char* build_state_name(build_state s) {
  switch (s) {
    case build_state::ready: return "ready";
    case build_state::queued: return "queued";
    case build_state::running: return "building";
    case build_state::queue_full: return "queue_full";
    case build_state::failed: return "failed";
  }
  return "unknown";
}

namespace {

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool is_build_leftover(const std::string& name) {
  return name.rfind(".build-", 0) == 0 || name.find(".tmp-") != std::string::npos;
}

// A failure to reach the index says nothing about the pair: retried soon, answered "busy".
core::error index_unreachable(const core::error& e) {
  auto out = e.with("build claim");
  out.sys_errno = EAGAIN;
  return out;
}

}  // namespace

patch_cache::patch_cache(index_db& db, cache_options opts, metrics& m) : db_(db), opts_(std::move(opts)), metrics_(m) {}

patch_cache::~patch_cache() { stop(); }

core::result<void> patch_cache::open() {
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (ec) return core::make_error(core::errc::io_error, "creating " + opts_.dir.string() + ": " + ec.message());

  // In a shared directory another replica's temp file or freshly renamed patch (its row not yet
  // published) looks like debris: only old ones are.
  const auto now = fs::file_time_type::clock::now();
  auto abandoned = [&](const fs::directory_entry& e) {
    if (!opts_.shared) return true;
    std::error_code tec;
    const auto t = e.last_write_time(tec);
    return !tec && now - t > opts_.orphan_age;
  };
  const std::string own_prefix = ".build-" + opts_.owner + "-";
  std::map<std::string, std::uint64_t> files;  // id -> size
  std::map<std::string, bool> files_abandoned;
  for (const auto& entry : fs::directory_iterator(opts_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_build_leftover(name)) {
      if (name.rfind(own_prefix, 0) == 0 || abandoned(entry)) {
        spdlog::warn("patch cache: removing unfinished build {}", name);
        fs::remove(entry.path(), ec);
      }
      continue;
    }
    if (name.size() == 64 + 5 && name.ends_with(".mlrn") && is_patch_id(name.substr(0, 64))) {
      files[name.substr(0, 64)] = entry.file_size(ec);
      files_abandoned[name.substr(0, 64)] = abandoned(entry);
    }
  }
  auto rows = db_.all_patches();
  if (!rows) return rows.err();
  std::lock_guard lock(mutex_);
  for (auto& row : *rows) {
    auto f = files.find(row.id);
    if (f == files.end() || f->second != row.size) {
      spdlog::warn("patch cache: dropping index entry {} ({})", row.id, f == files.end() ? "file missing" : "size differs");
      MALLORN_TRY(db_.delete_patch(row.id));
      continue;
    }
    files.erase(f);
    build_key key{row.source_sha256, row.target_sha256, row.profile};
    total_bytes_ += row.size;
    by_id_[row.id] = key;
    ready_[key] = std::move(row);
  }
  for (const auto& [id, size] : files) {
    if (!files_abandoned[id]) continue;  // shared: maybe another replica's build being published
    spdlog::warn("patch cache: removing unindexed patch file {}.mlrn", id);
    fs::remove(file_of(id), ec);
  }
  fsync_dir(opts_.dir);
  stopping_ = false;
  for (unsigned i = 0; i < std::max(1u, opts_.build_threads); ++i) workers_.emplace_back([this] { worker(); });
  renewer_ = std::thread([this] { renewer(); });
  return {};
}

std::string patch_cache::job_name(const build_key& key) const {
  return key.source_sha256 + ":" + key.target_sha256 + ":" + key.profile;
}

std::optional<patch_row> patch_cache::adopt(core::result<std::optional<patch_row>> row,
                                            std::optional<std::uint64_t> target_number) {
  if (!row) {
    spdlog::debug("patch cache: index lookup failed: {}", row.err().what());
    return std::nullopt;
  }
  if (!*row || (target_number && (*row)->target_number != *target_number)) return std::nullopt;
  // The row is published after its file; a file missing or short now is being evicted.
  std::error_code ec;
  if (fs::file_size(file_of((*row)->id), ec) != (*row)->size || ec) return std::nullopt;
  patch_row p = std::move(**row);
  build_key key{p.source_sha256, p.target_sha256, p.profile};
  std::lock_guard lock(mutex_);
  if (auto old = ready_.find(key); old != ready_.end()) {
    if (old->second.id == p.id) return old->second;
    by_id_.erase(old->second.id);
    total_bytes_ -= old->second.size;
  }
  total_bytes_ += p.size;
  by_id_[p.id] = key;
  ready_[key] = p;
  ++generation_;
  return p;
}

bool patch_cache::built_elsewhere(const build_key& key) {
  auto owner = db_.build_owner(job_name(key), unix_now());
  return owner && *owner && **owner != opts_.owner;
}

void patch_cache::renewer() {
  const auto period = std::max<std::chrono::seconds>(std::chrono::seconds(1), opts_.lease / 3);
  std::unique_lock lock(mutex_);
  while (!renew_cv_.wait_for(lock, period, [&] { return stopping_; })) {
    std::vector<build_key> building;
    for (const auto& [key, job] : running_) building.push_back(key);
    std::vector<std::string> pinned;
    if (opts_.shared)
      for (const auto& [id, n] : pins_) pinned.push_back(id);
    lock.unlock();
    const auto now = unix_now();
    for (const auto& key : building) {
      auto renewed = db_.renew_build(job_name(key), opts_.owner, now, opts_.lease.count());
      if (!renewed) spdlog::warn("patch cache: renewing a build claim: {}", renewed.err().what());
      else if (!*renewed) spdlog::warn("patch cache: the claim on a build was taken over (this replica was too slow to renew it)");
    }
    std::vector<std::string> renewed;
    for (const auto& id : pinned) {
      if (auto r = db_.pin_patch(id, opts_.owner, now + opts_.lease.count()); !r)
        spdlog::warn("patch cache: renewing a pin: {}", r.err().what());
      else
        renewed.push_back(id);
    }
    lock.lock();
    for (const auto& id : renewed) pinned_until_[id] = now + opts_.lease.count();
    std::erase_if(pinned_until_, [&](const auto& e) { return e.second < now; });  // bounded by live rows
  }
}

void patch_cache::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    for (const auto& job : queue_) in_flight_.erase(job.key);
    queue_.clear();
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  renew_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  if (renewer_.joinable()) renewer_.join();
  (void)flush_usage();
}

std::optional<patch_row> patch_cache::find(const build_key& key) const {
  std::lock_guard lock(mutex_);
  auto it = ready_.find(key);
  return it == ready_.end() ? std::nullopt : std::optional(it->second);
}

std::optional<patch_row> patch_cache::find_by_id(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = by_id_.find(id); it != by_id_.end()) return ready_.at(it->second);
  }
  if (!opts_.shared) return std::nullopt;
  return adopt(db_.find_patch_by_id(id), std::nullopt);
}

std::optional<patch_row> patch_cache::find_local(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? std::nullopt : std::optional(ready_.at(it->second));
}

std::vector<patch_row> patch_cache::list() const {
  std::lock_guard lock(mutex_);
  std::vector<patch_row> out;
  for (const auto& [key, row] : ready_) out.push_back(row);
  return out;
}

build_status patch_cache::status_locked(const build_key& key) const {
  if (auto it = ready_.find(key); it != ready_.end()) return {build_state::ready, it->second, {}};
  if (auto it = in_flight_.find(key); it != in_flight_.end()) return {it->second, std::nullopt, {}};
  if (auto it = failures_.find(key); it != failures_.end())
    return {build_state::failed, std::nullopt, it->second.error, it->second.transient};
  return {build_state::queued, std::nullopt, {}};
}

build_status patch_cache::request(const build_job& job) {
  {
    std::lock_guard lock(mutex_);
    // A patch whose header carries another target number (the target was deleted and added again,
    // so it got a new number) is stale: it is rebuilt, and replaced when the new build is ready.
    if (auto it = ready_.find(job.key); it != ready_.end() && it->second.target_number == job.target.number)
      return {build_state::ready, it->second, {}};
    if (auto it = in_flight_.find(job.key); it != in_flight_.end()) return {it->second, std::nullopt, {}};
    if (auto it = failures_.find(job.key); it != failures_.end()) {
      const auto backoff = it->second.transient ? opts_.transient_backoff : opts_.failure_backoff;
      if (std::chrono::steady_clock::now() - it->second.when < backoff)
        return {build_state::failed, std::nullopt, it->second.error, it->second.transient};
      failures_.erase(it);
    }
    if (stopping_) return {build_state::queue_full, std::nullopt, "server is shutting down"};
  }
  if (opts_.shared) {
    // Another replica may have built the pair, or be building it: then this one answers "building".
    const auto& k = job.key;
    if (auto row = adopt(db_.find_patch(k.source_sha256, k.target_sha256, k.profile), job.target.number))
      return {build_state::ready, row, {}};
    if (built_elsewhere(job.key)) return {build_state::running, std::nullopt, {}};
  }
  std::lock_guard lock(mutex_);
  if (auto it = ready_.find(job.key); it != ready_.end() && it->second.target_number == job.target.number)
    return {build_state::ready, it->second, {}};
  if (auto it = in_flight_.find(job.key); it != in_flight_.end()) return {it->second, std::nullopt, {}};
  if (stopping_) return {build_state::queue_full, std::nullopt, "server is shutting down"};
  if (queue_.size() >= opts_.queue_limit) return {build_state::queue_full, std::nullopt, "build queue is full"};
  queue_.push_back(job);
  in_flight_[job.key] = build_state::queued;
  work_cv_.notify_one();
  return {build_state::queued, std::nullopt, {}};
}

build_status patch_cache::wait(const build_key& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::unique_lock lock(mutex_);
    done_cv_.wait_until(lock, deadline, [&] { return stopping_ || !in_flight_.count(key); });
    if (!opts_.shared || stopping_ || ready_.count(key) || failures_.count(key) || in_flight_.count(key))
      return status_locked(key);
  }
  // Shared: another replica holds the build; poll the index until it publishes the patch.
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto row = adopt(db_.find_patch(key.source_sha256, key.target_sha256, key.profile), std::nullopt))
      return {build_state::ready, row, {}};
    if (!built_elsewhere(key)) break;
    std::unique_lock lock(mutex_);
    if (done_cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_; })) break;
  }
  std::lock_guard lock(mutex_);
  auto s = status_locked(key);
  if (s.state == build_state::queued && !ready_.count(key)) s.state = build_state::running;  // elsewhere
  return s;
}

void patch_cache::worker() {
  for (;;) {
    build_job job;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      in_flight_[job.key] = build_state::running;
      running_[job.key] = job;
    }
    // One build per pair across replicas: the claim is a lease in the index, renewed by renewer().
    const std::string name = job_name(job.key);
    auto claimed = db_.claim_build(name, opts_.owner, unix_now(), opts_.lease.count());
    std::optional<patch_row> published;
    if (claimed && *claimed && opts_.shared)  // finished elsewhere between the lookup and the claim?
      published = adopt(db_.find_patch(job.key.source_sha256, job.key.target_sha256, job.key.profile),
                        job.target.number);
    if (claimed && (!*claimed || published)) {
      if (*claimed) (void)db_.finish_build(name, opts_.owner);
      else spdlog::info("build {}: {} -> {} is being built by another replica", job.source.model, job.source.version,
                        job.target.version);
      {
        std::lock_guard lock(mutex_);
        in_flight_.erase(job.key);
        running_.erase(job.key);
      }
      done_cv_.notify_all();
      continue;
    }
    spdlog::info("build {}: {} -> {} started on {}", job.source.model, job.source.version, job.target.version,
                 opts_.owner);
    const auto started = std::chrono::steady_clock::now();
    auto row = claimed ? build(job) : core::result<patch_row>(index_unreachable(claimed.err()));
    if (claimed)
      if (auto f = db_.finish_build(name, opts_.owner); !f) spdlog::warn("build {}: releasing the claim: {}", name, f.err().what());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (claimed) metrics_.build_finished(row.ok(), seconds);
    std::string keep, replaced;
    {
      std::lock_guard lock(mutex_);
      if (row) {
        keep = row->id;
        spdlog::info("build {}: {} -> {} ready in {:.2f} s: patch {} ({} bytes, target {} bytes)", job.source.model,
                     job.source.version, job.target.version, seconds, row->id, row->size, job.target.fingerprint.file_size);
        if (auto old = ready_.find(job.key); old != ready_.end()) {  // replaced by a rebuild
          by_id_.erase(old->second.id);
          total_bytes_ -= old->second.size;
          if (old->second.id != row->id) replaced = old->second.id;
        }
        total_bytes_ += row->size;
        by_id_[row->id] = job.key;
        ready_[job.key] = std::move(*row);
        ++generation_;
      } else {
        spdlog::error("build {}: {} -> {} failed after {:.2f} s: {}", job.source.model, job.source.version,
                      job.target.version, seconds, row.err().what());
        failures_[job.key] = {row.err().what(), std::chrono::steady_clock::now(), row.err().is_transient(),
                              job.source.model, job.source.version, job.target.version};
      }
    }
    // The rebuilt pair's old file has no row any more (insert_patch replaced it); a download
    // still reading it keeps its open descriptor.
    if (!replaced.empty()) {
      std::error_code ec;
      fs::remove(file_of(replaced), ec);
    }
    // Evict before announcing the build, so whoever waits sees the cache within its budget.
    if (!keep.empty()) evict_over_budget(keep);
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(job.key);
      running_.erase(job.key);
    }
    done_cv_.notify_all();
  }
}

core::result<patch_row> patch_cache::build(const build_job& job) {
  const auto started = std::chrono::steady_clock::now();
  // The owner in the name: in a shared directory open() tells its own leftovers from others' builds.
  const fs::path staging = opts_.dir / (".build-" + opts_.owner + "-" + job.key.source_sha256.substr(0, 16) + "-" +
                                        job.key.target_sha256.substr(0, 16) + "-" + job.key.profile + ".mlrn");
  struct remove_on_exit {
    const fs::path& path;
    ~remove_on_exit() {
      std::error_code ec;
      fs::remove(path, ec);
    }
  } cleanup{staging};

  if (opts_.min_free) {
    // A build on a full disk fails late with ENOSPC after minutes of work, and starves the index.
    // ENOSPC makes the failure transient: the pair is retried, not remembered as unpatchable.
    const auto probe = opts_.space ? opts_.space : statvfs_space_probe();
    if (const auto room = probe->free_bytes(opts_.dir)) {
      const std::uint64_t need = opts_.min_free + job.target.fingerprint.file_size;
      if (*room < need) {
        auto e = core::make_error(core::errc::io_error, "not enough free space for a build in " + opts_.dir.string() +
                                                            ": " + std::to_string(*room) + " bytes free, " +
                                                            std::to_string(need) + " needed");
        e.sys_errno = ENOSPC;
        return e;
      }
    }
  }
  std::optional<core::ed25519_public_key> public_key;
  if (opts_.signing_key) {
    core::ed25519_public_key pub;
    std::copy(opts_.signing_key->begin() + 32, opts_.signing_key->end(), pub.begin());
    public_key = pub;
  }
  // Never publish a patch that does not reproduce the target: apply it once, with the decoder the
  // device runs (the core applier, or mallorn_lite for the mcu profile).
  core::result<formats::patch_stats> stats = core::make_error(core::errc::invalid_argument, "unknown profile");
  core::result<core::patch_header> verified = stats.err();
  if (job.key.profile == "mcu") {
    formats::mcu_options mcu;
    mcu.level = opts_.level;
    mcu.target_version = job.target.number;
    mcu.signing_key = opts_.signing_key;
    stats = formats::create_mcu_patch_file(job.source.path, job.target.path, staging, mcu);
    if (!stats) return stats.err().with("mcu diff");
    verified = formats::verify_mcu_patch_file(job.source.path, staging, public_key);
  } else {
    formats::diff_options diff;
    diff.level = opts_.level;
    diff.neural = opts_.neural;
    diff.target_version = job.target.number;
    diff.signing_key = opts_.signing_key;
    stats = formats::create_patch_file(job.source.path, job.target.path, staging, diff);
    if (!stats) return stats.err().with("diff");
    if (opts_.build_delay.count()) {  // tests: a slow build to kill with its temp file on disk
      std::unique_lock lock(mutex_);
      work_cv_.wait_for(lock, opts_.build_delay, [&] { return stopping_; });
    }
    core::apply_options check;
    check.public_key = public_key;
    auto applied = core::verify_patch_file(job.source.path, staging, check);
    if (applied) verified = applied->header;
    else verified = applied.err();
  }
  if (!verified) return verified.err().with("verifying the new patch");
  if (core::to_hex(verified->source_sha256) != job.key.source_sha256 ||
      core::to_hex(verified->target_sha256) != job.key.target_sha256)
    return core::make_error(core::errc::io_error, "a model file changed while its patch was being built");

  auto digest = core::sha256_of_file(staging);
  if (!digest) return digest.err();
  patch_row row;
  row.id = core::to_hex(*digest);
  row.source_sha256 = job.key.source_sha256;
  row.target_sha256 = job.key.target_sha256;
  row.profile = job.key.profile;
  row.model = job.source.model;
  row.source_version = job.source.version;
  row.target_version = job.target.version;
  row.size = stats->patch_size;
  row.target_number = job.target.number;
  row.is_signed = opts_.signing_key.has_value();
  row.created = row.last_used = unix_now();
  row.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::error_code ec;
  fs::rename(staging, file_of(row.id), ec);
  if (ec) {
    auto e = core::make_error(core::errc::io_error, "publishing patch " + row.id + ": " + ec.message());
    e.sys_errno = ec.value();
    return e;
  }
  fsync_dir(opts_.dir);
  if (auto r = db_.insert_patch(row); !r) {
    // Shared: a replica that took over a claim this one was too slow to renew may have published
    // the same patch first; its row stands.
    if (opts_.shared)
      if (auto theirs = db_.find_patch(row.source_sha256, row.target_sha256, row.profile); theirs && *theirs) {
        if ((*theirs)->id != row.id) fs::remove(file_of(row.id), ec);
        return **theirs;
      }
    fs::remove(file_of(row.id), ec);
    return r.err();
  }
  return row;
}

void patch_cache::evict_over_budget(const std::string& keep_id) {
  if (opts_.budget_bytes == 0) return;
  std::set<std::string> held;  // pinned by another replica (or already gone from the index)
  for (;;) {
    patch_row victim;
    {
      std::lock_guard lock(mutex_);
      if (total_bytes_ <= opts_.budget_bytes) return;
      const patch_row* oldest = nullptr;
      for (const auto& [key, row] : ready_) {
        if (row.id == keep_id || pins_.count(row.id) || held.count(row.id)) continue;
        if (!oldest || row.last_used < oldest->last_used) oldest = &row;
      }
      if (!oldest) return;  // everything left is pinned or just built
      victim = *oldest;
    }
    // Row first (unless a replica pins it), then file: a crash in between leaves an unindexed
    // file, which open() removes.
    auto removed = db_.delete_patch_unless_pinned(victim.id, unix_now());
    if (!removed) {
      spdlog::error("patch cache: {}", removed.err().what());
      return;
    }
    if (!*removed) {
      held.insert(victim.id);
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      if (auto it = by_id_.find(victim.id); it != by_id_.end()) {
        ready_.erase(it->second);
        by_id_.erase(it);
        total_bytes_ -= victim.size;
      }
      ++generation_;
      usage_.erase(victim.id);
      evictions_.push_front({victim, static_cast<std::int64_t>(std::time(nullptr))});
      if (evictions_.size() > cache_activity::max_evictions_kept) evictions_.pop_back();
    }
    std::error_code ec;
    fs::remove(file_of(victim.id), ec);
    spdlog::info("patch cache: evicted {} ({} -> {} of {}, {} bytes) to stay under {} bytes", victim.id,
                 victim.source_version, victim.target_version, victim.model, victim.size, opts_.budget_bytes);
  }
}

cache_activity patch_cache::activity() const {
  std::lock_guard lock(mutex_);
  cache_activity a;
  for (const auto& job : queue_)
    a.builds.push_back({job.source.model, job.source.version, job.target.version, job.key.profile, "queued"});
  for (const auto& [key, job] : running_)
    a.builds.push_back({job.source.model, job.source.version, job.target.version, key.profile, "running"});
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [key, f] : failures_)
    a.failures.push_back({f.model, f.source_version, f.target_version, key.profile, f.error,
                          std::chrono::duration_cast<std::chrono::seconds>(now - f.when).count()});
  a.evictions.assign(evictions_.begin(), evictions_.end());
  return a;
}

bool patch_cache::pin_writes_index(const std::string& id) const {
  if (!opts_.shared) return false;
  std::lock_guard lock(mutex_);
  if (pins_.count(id)) return false;
  auto it = pinned_until_.find(id);
  return it == pinned_until_.end() || it->second - unix_now() < opts_.lease.count() / 2;
}

std::shared_ptr<void> patch_cache::pin(const std::string& id) {
  bool write = false;
  {
    std::lock_guard lock(mutex_);
    const bool first = ++pins_[id] == 1;
    auto it = pinned_until_.find(id);
    write = first && opts_.shared && (it == pinned_until_.end() || it->second - unix_now() < opts_.lease.count() / 2);
  }
  // Shared: other replicas must see the pin too; renewer() keeps it alive while the download runs.
  // A row written less than half a lease ago still holds past the renewer's next pass, so
  // back-to-back downloads of one patch write it once per half lease, not once each.
  if (write) {
    const std::int64_t until = unix_now() + opts_.lease.count();
    if (auto r = db_.pin_patch(id, opts_.owner, until); !r) {
      spdlog::warn("patch cache: pinning {}: {}", id, r.err().what());
    } else {
      std::lock_guard lock(mutex_);
      pinned_until_[id] = until;
    }
  }
  return std::shared_ptr<void>(nullptr, [this, id](void*) {
    std::lock_guard lock(mutex_);
    if (--pins_[id] == 0) pins_.erase(id);
  });
}

void patch_cache::record_download(const std::string& id, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto& u = usage_[id];
  ++u.hits;
  u.bytes += bytes;
  auto& row = ready_.at(it->second);
  row.last_used = unix_now();
  ++row.hits;
  row.bytes_served += bytes;
}

core::result<void> patch_cache::flush_usage() {
  std::map<std::string, usage> pending;
  std::map<std::string, std::int64_t> last_used;
  {
    std::lock_guard lock(mutex_);
    pending.swap(usage_);
    for (const auto& [id, u] : pending)
      if (auto it = by_id_.find(id); it != by_id_.end()) last_used[id] = ready_.at(it->second).last_used;
  }
  for (const auto& [id, u] : pending) MALLORN_TRY(db_.add_patch_usage(id, u.hits, u.bytes, last_used[id]));
  return {};
}

core::result<void> patch_cache::sync() {
  auto rows = db_.all_patches();
  if (!rows) return rows.err();
  std::map<build_key, patch_row> ready;
  std::map<std::string, build_key> by_id;
  std::uint64_t total = 0;
  for (auto& row : *rows) {
    build_key key{row.source_sha256, row.target_sha256, row.profile};
    total += row.size;
    by_id[row.id] = key;
    ready[key] = std::move(row);
  }
  std::lock_guard lock(mutex_);
  bool changed = by_id.size() != by_id_.size();
  for (auto it = by_id.begin(); !changed && it != by_id.end(); ++it) changed = !by_id_.count(it->first);
  // Downloads counted since the last flush_usage() stay in usage_ and reach the index next time.
  ready_.swap(ready);
  by_id_.swap(by_id);
  total_bytes_ = total;
  if (changed) ++generation_;
  return {};
}

std::size_t patch_cache::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t patch_cache::running() const {
  std::lock_guard lock(mutex_);
  return in_flight_.size() - queue_.size();
}

std::uint64_t patch_cache::total_bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes_;
}

std::size_t patch_cache::count() const {
  std::lock_guard lock(mutex_);
  return ready_.size();
}

}  // namespace mallorn::server
