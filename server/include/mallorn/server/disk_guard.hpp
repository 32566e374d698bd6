// The data disk's free space, watched: below --min-free mallornd runs read-only ("degraded"): it
// still answers check-update and serves the patches and models it has, and refuses what would
// write (builds, uploads, reports) with 503 disk_full + Retry-After until space returns. The
// probe is an interface so tests can make a disk "full" without filling one.
//
// Starting on a full disk: SQLite cannot even open its index without a little room (the WAL's
// shared-memory file, the journal). So while there is room the guard keeps a reserve file
// (`reserve_bytes` of real blocks) in the data directory, and deletes it when the disk is full:
// that room is what lets the index open and the last writes finish. It is written again once
// the disk has min_free + reserve_bytes free.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mallorn::server {

class space_probe {
 public:
  virtual ~space_probe() = default;
  // Bytes an unprivileged writer can still use on the filesystem holding `dir` (nullopt: unknown).
  virtual std::optional<std::uint64_t> free_bytes(const std::filesystem::path& dir) const = 0;
};

// statvfs(2): f_bavail * f_frsize.
std::shared_ptr<space_probe> statvfs_space_probe();

class disk_guard {
 public:
  // `dirs`: every directory mallornd writes (data, patch cache, store); the lowest free space
  // counts. min_free 0 still degrades at 0 bytes free.
  // `reserve`: the reserve file's path ("" = none).
  disk_guard(std::vector<std::filesystem::path> dirs, std::uint64_t min_free,
             std::shared_ptr<const space_probe> probe = statvfs_space_probe(), std::filesystem::path reserve = {},
             std::uint64_t reserve_bytes = default_reserve_bytes);
  static constexpr std::uint64_t default_reserve_bytes = 1u << 20;

  // Probes the disks: logs the change into and out of degraded mode, and while degraded an error
  // at most once a minute. Returns degraded(). mallornd calls it every second.
  bool refresh();
  bool degraded() const { return degraded_.load(); }
  // The lowest free space seen at the last refresh (0 when unknown and noted full).
  std::uint64_t free_bytes() const { return free_.load(); }
  std::uint64_t min_free() const { return min_free_; }
  // Whether `bytes` more can be written with min_free to spare (probes now, for uploads/builds).
  bool has_room_for(std::uint64_t bytes);
  // A writer got ENOSPC/EDQUOT: degraded now, until a refresh finds min_free again.
  void note_full(const std::string& what);
  // Seconds a client should wait before retrying a write refused while degraded.
  static constexpr int retry_after_seconds = 60;

 private:
  std::optional<std::uint64_t> probe_lowest() const;
  void set_degraded(bool on, std::uint64_t free, const std::string& why);
  void keep_reserve(bool degraded, std::uint64_t free);

  std::vector<std::filesystem::path> dirs_;
  std::uint64_t min_free_;
  std::shared_ptr<const space_probe> probe_;
  std::filesystem::path reserve_;
  std::uint64_t reserve_bytes_;
  bool released_ = false;  // the reserve was deleted for a full disk (refresh() thread only)
  std::atomic<bool> degraded_{false};
  std::atomic<std::uint64_t> free_{0};
  std::mutex log_mutex_;
  std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace mallorn::server
