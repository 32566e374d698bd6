// Time zones for maintenance windows: "what is the UTC offset of zone Z at instant T". GCC 12's
// libstdc++ has no chrono tzdb, so this reads the system's TZif files (/usr/share/zoneinfo,
// RFC 8536) itself: the 64-bit v2+ data for the recorded transitions, and the POSIX TZ rule in the
// file's footer ("CET-1CEST,M3.5.0,M10.5.0/3") for instants after the last one. Zone names come
// from devices (the `tz` tag), so names are validated strictly, files are bounded in size, and the
// cache of parsed zones (and of names that are not zones) is bounded.
#pragma once
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mallorn/core/error.hpp"

namespace mallorn::server::fleet {

// Offsets are seconds east of UTC; instants are unix seconds.
class time_zone {
 public:
  virtual ~time_zone() = default;
  virtual std::int32_t offset_at(std::int64_t utc) const = 0;
};

class fixed_zone final : public time_zone {
 public:
  explicit fixed_zone(std::int32_t offset) : offset_(offset) {}
  std::int32_t offset_at(std::int64_t) const override { return offset_; }

 private:
  std::int32_t offset_;
};

// A POSIX TZ rule as in a TZif footer (with RFC 8536's extensions: rule times from -167 to 167
// hours). Standard time only, or standard and daylight time with a yearly start and end.
struct posix_tz_rule {
  struct date_rule {
    enum class kind { julian_no_leap, julian_zero, month_week_day } what = kind::month_week_day;
    int day = 0;              // Jn: 1..365; n: 0..365; Mm.w.d: d = 0 (Sunday)..6
    int month = 0, week = 0;  // Mm.w.d: 1..12, 1..5 (5 = last)
    std::int32_t time = 7200;  // seconds after local midnight at which it changes
  };
  std::int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  std::int32_t dst_offset = 0;
  date_rule start, end;
  std::int32_t offset_at(std::int64_t utc) const;
};
// Strict: the whole text must be one rule; invalid_argument says what is wrong.
core::result<posix_tz_rule> parse_posix_tz(std::string_view text);

// One parsed TZif file.
class tzif_zone final : public time_zone {
 public:
  std::int32_t offset_at(std::int64_t utc) const override;
  std::vector<std::int64_t> transitions;  // strictly increasing
  std::vector<std::int32_t> offset_after;  // offset in effect from transitions[i]
  std::int32_t initial_offset = 0;         // before the first transition (time type 0)
  std::optional<posix_tz_rule> footer;     // after the last transition
};
inline constexpr std::size_t max_tzif_bytes = 256 * 1024;  // real files are a few KiB
core::result<tzif_zone> parse_tzif(std::span<const std::uint8_t> bytes);

// An IANA-style zone name: 1-64 characters of A-Z a-z 0-9 _ + - /, components separated by
// single '/', none empty, no '.' anywhere: it can only name a file below the zone root.
bool is_zone_name(std::string_view name);

// Zone lookup by name (a small interface: tests give a directory of their own files).
class zone_source {
 public:
  virtual ~zone_source() = default;
  // nullptr: no such zone (or the name is not a zone name).
  virtual std::shared_ptr<const time_zone> find(const std::string& name) = 0;
};

// Zones from a TZif directory (default /usr/share/zoneinfo). Keeps at most `max_cached` parsed
// zones and names known not to be zones, oldest first out (a hit takes only a shared lock: this
// is on check-update's path).
class zoneinfo_source final : public zone_source {
 public:
  explicit zoneinfo_source(std::filesystem::path root = "/usr/share/zoneinfo", std::size_t max_cached = 512);
  std::shared_ptr<const time_zone> find(const std::string& name) override;
  std::size_t cached() const;

 private:
  std::shared_ptr<const time_zone> load(const std::string& name) const;
  std::filesystem::path root_;
  std::size_t max_cached_;
  mutable std::shared_mutex mutex_;
  std::deque<std::string> order_;  // insertion order, for eviction
  std::unordered_map<std::string, std::shared_ptr<const time_zone>> cache_;  // nullptr: not a zone
};

// A window's `tz`: a fixed offset ("UTC", "+02:00", see parse_utc_offset) or a zone name looked up
// in `zones`. nullptr when it is neither.
std::shared_ptr<const time_zone> resolve_zone(zone_source& zones, const std::string& tz);

}  // namespace mallorn::server::fleet
