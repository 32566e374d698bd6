#include "mallorn/server/disk_guard.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace mallorn::server {
namespace {

class statvfs_probe final : public space_probe {
 public:
  std::optional<std::uint64_t> free_bytes(const std::filesystem::path& dir) const override {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }
};

}  // namespace

std::shared_ptr<space_probe> statvfs_space_probe() { return std::make_shared<statvfs_probe>(); }

disk_guard::disk_guard(std::vector<std::filesystem::path> dirs, std::uint64_t min_free,
                       std::shared_ptr<const space_probe> probe, std::filesystem::path reserve, std::uint64_t reserve_bytes)
    : dirs_(std::move(dirs)),
      min_free_(min_free),
      probe_(std::move(probe)),
      reserve_(std::move(reserve)),
      reserve_bytes_(reserve_bytes) {}

std::optional<std::uint64_t> disk_guard::probe_lowest() const {
  std::optional<std::uint64_t> lowest;
  for (const auto& d : dirs_)
    if (auto f = probe_->free_bytes(d)) lowest = lowest ? std::min(*lowest, *f) : *f;
  return lowest;
}

bool disk_guard::refresh() {
  const auto lowest = probe_lowest();
  if (!lowest) return degraded();  // cannot tell: keep the last verdict
  free_ = *lowest;
  // Leaving read-only mode needs the released reserve back too, or freeing it would end the
  // mode it was freed for.
  const std::uint64_t floor = std::max<std::uint64_t>(min_free_, 1);
  const bool full = *lowest < floor + (degraded() && released_ ? reserve_bytes_ : 0);
  set_degraded(full, *lowest, full ? "free space is below --min-free" : "");
  keep_reserve(full, *lowest);
  return full;
}

void disk_guard::keep_reserve(bool degraded, std::uint64_t free) {
  if (reserve_.empty()) return;
  std::error_code ec;
  const bool present = std::filesystem::exists(reserve_, ec);
  if (degraded && present) {
    std::filesystem::remove(reserve_, ec);
    released_ = !ec;
    if (!ec) spdlog::warn("disk full: released the {}-byte reserve {} so the index can keep working", reserve_bytes_,
                          reserve_.string());
    return;
  }
  if (degraded || present || free < min_free_ + reserve_bytes_) return;
  // Real blocks (written, not a sparse hole or fallocate, which some filesystems do not honour),
  // temp + fsync + rename so a half-written reserve never looks like a whole one.
  const auto temp = reserve_.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::vector<char> block(64 * 1024, 0x52);
  bool ok = true;
  for (std::uint64_t done = 0; ok && done < reserve_bytes_; done += block.size())
    ok = ::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size());
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) std::filesystem::rename(temp, reserve_, ec);
  if (!ok || ec) std::filesystem::remove(temp, ec);
  else released_ = false;
}

bool disk_guard::has_room_for(std::uint64_t bytes) {
  const auto lowest = probe_lowest();
  if (!lowest) return !degraded();
  free_ = *lowest;
  return *lowest >= std::max<std::uint64_t>(min_free_, 1) && *lowest - std::max<std::uint64_t>(min_free_, 1) >= bytes;
}

void disk_guard::note_full(const std::string& what) {
  set_degraded(true, free_.load(), what);
}

void disk_guard::set_degraded(bool on, std::uint64_t free, const std::string& why) {
  const bool was = degraded_.exchange(on);
  std::lock_guard lock(log_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (on && !was) {
    last_log_ = now;
    spdlog::critical("disk full: {} ({} bytes free, --min-free {}): read-only mode: check-update and downloads "
                     "go on; builds, uploads and reports answer 503 disk_full until space returns",
                     why, free, min_free_);
  } else if (on && now - last_log_ >= std::chrono::minutes(1)) {
    last_log_ = now;
    spdlog::error("disk still full ({} bytes free, --min-free {}): builds, uploads and reports are refused", free,
                  min_free_);
  } else if (!on && was) {
    spdlog::warn("disk has room again ({} bytes free, --min-free {}): leaving read-only mode", free, min_free_);
  }
}

}  // namespace mallorn::server
