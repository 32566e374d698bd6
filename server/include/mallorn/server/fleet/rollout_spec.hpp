// What an operator asks for: groups (named selectors over device tags, or explicit device lists),
// rollouts (a model version offered in growing stages behind a health gate), maintenance windows,
// and the tags a device sends with check-update. Parsing is strict (unknown fields, wrong types,
// control characters and oversized input are refused with a message saying what is wrong) and
// bounded, because every one of these arrives over the network.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mallorn/core/error.hpp"
#include "mallorn/server/fleet/time_zone.hpp"

namespace mallorn::server::fleet {

// Bounds on what a stranger can make us hold.
inline constexpr std::size_t max_tags = 64;              // per device
inline constexpr std::size_t max_tag_key = 64;           // characters
inline constexpr std::size_t max_tag_value = 256;        // characters
inline constexpr std::size_t max_stages = 20;
inline constexpr std::size_t max_group_devices = 10000;  // explicit device ids per group
inline constexpr std::size_t max_selectors = 32;
inline constexpr std::size_t max_in_values = 256;
inline constexpr std::size_t max_device_id = 256;

using device_tags = std::map<std::string, std::string>;

// One condition on one tag: equality, membership in a set, or presence.
struct tag_selector {
  enum class kind { equals, in, present, absent } op = kind::equals;
  std::string key;
  std::set<std::string> values;  // equals: one value; in: several
  bool matches(const device_tags& tags) const;
};

struct group_spec {
  std::string name;
  std::vector<tag_selector> match;  // all must hold
  std::set<std::string> devices;    // explicit members (in addition to `match`)
  bool matches(const std::string& device_id, const device_tags& tags) const;
  nlohmann::json to_json() const;
};

// Offer the update only on `days` (bit 0 = Monday) between `start` and `end` (minutes after
// midnight, local time; end < start spans midnight). `tz` is a fixed UTC offset or an IANA zone
// name (summer time included, see time_zone.hpp); the engine resolves it, and a device's own `tz`
// tag replaces it when that resolves.
struct maintenance_window {
  std::uint8_t days = 0x7f;
  int start_minute = 0, end_minute = 0;
  std::string tz = "UTC";  // as given ("UTC", "+02:00", "Europe/Berlin")
  bool open_at(std::int64_t unix_seconds, const time_zone& zone) const;
  // The first instant >= unix_seconds at which the window is open (unix seconds).
  std::int64_t next_open(std::int64_t unix_seconds, const time_zone& zone) const;
  nlohmann::json to_json() const;
};

struct rollout_spec {
  std::string model, version, group;  // group "" = every device
  std::vector<double> stages;         // percent of the matching devices, strictly increasing
  std::int64_t stage_min_seconds = 600;
  double max_failure_rate = 0.05;
  std::int64_t min_reports = 20;
  std::int64_t pause_timeout_seconds = 0;  // 0 = a paused rollout waits for the operator
  std::int64_t start_at = 0;               // unix seconds; 0 = now
  std::optional<maintenance_window> window;
  nlohmann::json to_json() const;
};

// Each parser returns invalid_argument with a message naming the field on bad input.
core::result<group_spec> parse_group(const nlohmann::json& doc);
core::result<rollout_spec> parse_rollout(const nlohmann::json& doc);
core::result<maintenance_window> parse_window(const nlohmann::json& doc);
// "UTC", "Z", "+HH:MM", "-HH:MM", "UTC+HH:MM": minutes east of UTC.
std::optional<int> parse_utc_offset(const std::string& tz);
// check-update's "tags": an object of at most max_tags short string values.
core::result<device_tags> parse_tags(const nlohmann::json& doc);
// Names of groups, tag keys: [A-Za-z0-9._-], 1..64 characters.
bool is_fleet_name(const std::string& s);
// Printable text without control characters (device ids, tag values).
bool is_printable(const std::string& s, std::size_t max_len);

// Where a device falls in a rollout: a number in [0, 10000) fixed by (rollout id, device id). The
// device is in a stage of p percent when bucket < p * 100, so every stage contains the previous.
std::uint32_t rollout_bucket(std::int64_t rollout_id, const std::string& device_id);
bool in_stage(std::int64_t rollout_id, const std::string& device_id, double percent);

}  // namespace mallorn::server::fleet
