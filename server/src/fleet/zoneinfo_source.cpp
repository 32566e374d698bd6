// Zone lookup in a TZif directory with a bounded cache. Names come from devices: only strict
// zone names reach the file system, files are read up to max_tzif_bytes + 1, and names that are
// not zones are cached too, so a device repeating a bad `tz` costs a map lookup.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "mallorn/server/fleet/rollout_spec.hpp"
#include "mallorn/server/fleet/time_zone.hpp"

namespace mallorn::server::fleet {

bool is_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.back() == '/') return false;
  char prev = '/';
  for (char c : name) {
    // No '.' at all: neither "." nor ".." nor hidden files can be named.
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' || c == '/';
    if (!ok) return false;
    if (c == '/' && prev == '/') return false;  // empty component
    prev = c;
  }
  return true;
}

zoneinfo_source::zoneinfo_source(std::filesystem::path root, std::size_t max_cached)
    : root_(std::move(root)), max_cached_(std::max<std::size_t>(max_cached, 1)) {}

std::size_t zoneinfo_source::cached() const {
  std::shared_lock lock(mutex_);
  return cache_.size();
}

std::shared_ptr<const time_zone> zoneinfo_source::load(const std::string& name) const {
  const int fd = ::open((root_ / name).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return nullptr;
  std::vector<std::uint8_t> bytes;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) <= max_tzif_bytes) {
    bytes.resize(static_cast<std::size_t>(st.st_size) + 1);  // +1: a file that grew is noticed
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    bytes.resize(got);
  }
  ::close(fd);
  if (bytes.empty()) return nullptr;
  auto z = parse_tzif(bytes);
  if (!z) return nullptr;
  return std::make_shared<const tzif_zone>(std::move(*z));
}

std::shared_ptr<const time_zone> zoneinfo_source::find(const std::string& name) {
  if (!is_zone_name(name)) return nullptr;
  {
    std::shared_lock lock(mutex_);
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  }
  auto zone = load(name);  // outside the lock: a slow disk does not stall other lookups
  std::unique_lock lock(mutex_);
  if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  while (cache_.size() >= max_cached_) {
    cache_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(name);
  cache_.emplace(name, zone);
  return zone;
}

std::shared_ptr<const time_zone> resolve_zone(zone_source& zones, const std::string& tz) {
  if (auto off = parse_utc_offset(tz)) return std::make_shared<const fixed_zone>(*off * 60);
  return zones.find(tz);
}

}  // namespace mallorn::server::fleet
