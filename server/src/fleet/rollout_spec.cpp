// Strict, bounded parsing of groups, rollouts, windows and device tags.
#include "mallorn/server/fleet/rollout_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace mallorn::server::fleet {
namespace {

core::error bad(const std::string& message) { return core::make_error(core::errc::invalid_argument, message); }

// Field names are echoed in messages: print them only when they are plain names.
std::string shown(const std::string& key) { return is_fleet_name(key) ? "'" + key + "'" : "(a field with an odd name)"; }

core::result<void> only_fields(const nlohmann::json& doc, std::initializer_list<const char*> allowed, const char* what) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }))
      return bad(std::string(what) + ": unknown field " + shown(k));
  }
  return {};
}

core::result<std::int64_t> integer_field(const nlohmann::json& doc, const char* name, std::int64_t lo, std::int64_t hi,
                                         std::int64_t fallback) {
  if (!doc.contains(name) || doc[name].is_null()) return fallback;
  const auto& v = doc[name];
  const bool integral = v.is_number_integer() || v.is_number_unsigned() ||
                        (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()));
  if (!integral) return bad(std::string("'") + name + "' must be an integer");
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    return bad(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return static_cast<std::int64_t>(d);
}

core::result<std::string> name_field(const nlohmann::json& doc, const char* name, bool required) {
  if (!doc.contains(name) || doc[name].is_null()) {
    if (required) return bad(std::string("'") + name + "' is required");
    return std::string();
  }
  if (!doc[name].is_string()) return bad(std::string("'") + name + "' must be a string");
  const auto& s = doc[name].get_ref<const std::string&>();
  if (!is_fleet_name(s)) return bad(std::string("'") + name + "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  return s;
}

// "HH:MM" -> minutes after midnight (24:00 allowed as an end).
std::optional<int> parse_clock(const nlohmann::json& v) {
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 5 || s[2] != ':' || !std::isdigit(static_cast<unsigned char>(s[0])) ||
      !std::isdigit(static_cast<unsigned char>(s[1])) || !std::isdigit(static_cast<unsigned char>(s[3])) ||
      !std::isdigit(static_cast<unsigned char>(s[4])))
    return std::nullopt;
  const int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

std::string clock_text(int minutes) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60 % 100, minutes % 60);
  return buf;
}

const char* const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

}  // namespace

bool is_fleet_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool is_printable(const std::string& s, std::size_t max_len) {
  return s.size() <= max_len &&
         std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool tag_selector::matches(const device_tags& tags) const {
  auto it = tags.find(key);
  switch (op) {
    case kind::present: return it != tags.end();
    case kind::absent: return it == tags.end();
    case kind::equals:
    case kind::in: return it != tags.end() && values.count(it->second) > 0;
  }
  return false;
}

bool group_spec::matches(const std::string& device_id, const device_tags& tags) const {
  if (devices.count(device_id)) return true;
  if (match.empty()) return false;
  return std::all_of(match.begin(), match.end(), [&](const tag_selector& s) { return s.matches(tags); });
}

nlohmann::json group_spec::to_json() const {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& s : match) {
    switch (s.op) {
      case tag_selector::kind::equals: m[s.key] = *s.values.begin(); break;
      case tag_selector::kind::in: m[s.key] = {{"in", s.values}}; break;
      case tag_selector::kind::present: m[s.key] = {{"present", true}}; break;
      case tag_selector::kind::absent: m[s.key] = {{"present", false}}; break;
    }
  }
  nlohmann::json out = {{"name", name}, {"match", m}};
  out["devices"] = devices;
  return out;
}

core::result<group_spec> parse_group(const nlohmann::json& doc) {
  if (!doc.is_object()) return bad("a group must be a JSON object");
  MALLORN_TRY(only_fields(doc, {"name", "match", "devices"}, "group"));
  group_spec g;
  auto name = name_field(doc, "name", true);
  if (!name) return name.err();
  g.name = *name;
  if (doc.contains("match") && !doc["match"].is_null()) {
    const auto& m = doc["match"];
    if (!m.is_object()) return bad("'match' must be an object of tag -> value, {\"in\": [...]} or {\"present\": bool}");
    if (m.size() > max_selectors) return bad("'match' has more than " + std::to_string(max_selectors) + " conditions");
    for (const auto& [key, cond] : m.items()) {
      if (!is_fleet_name(key)) return bad("'match': tag names must be 1-64 characters of A-Z a-z 0-9 . _ -");
      tag_selector s;
      s.key = key;
      if (cond.is_string()) {
        if (!is_printable(cond.get_ref<const std::string&>(), max_tag_value))
          return bad("'match." + key + "': values are at most 256 printable characters");
        s.op = tag_selector::kind::equals;
        s.values.insert(cond.get<std::string>());
      } else if (cond.is_object() && cond.size() == 1 && cond.contains("in")) {
        const auto& in = cond["in"];
        if (!in.is_array() || in.empty() || in.size() > max_in_values)
          return bad("'match." + key + ".in' must be a list of 1-" + std::to_string(max_in_values) + " strings");
        s.op = tag_selector::kind::in;
        for (const auto& v : in) {
          if (!v.is_string() || !is_printable(v.get_ref<const std::string&>(), max_tag_value))
            return bad("'match." + key + ".in' must hold strings of at most 256 printable characters");
          s.values.insert(v.get<std::string>());
        }
      } else if (cond.is_object() && cond.size() == 1 && cond.contains("present") && cond["present"].is_boolean()) {
        s.op = cond["present"].get<bool>() ? tag_selector::kind::present : tag_selector::kind::absent;
      } else {
        return bad("'match." + key + "' must be a string, {\"in\": [...]} or {\"present\": true|false}");
      }
      g.match.push_back(std::move(s));
    }
  }
  if (doc.contains("devices") && !doc["devices"].is_null()) {
    const auto& d = doc["devices"];
    if (!d.is_array() || d.size() > max_group_devices)
      return bad("'devices' must be a list of at most " + std::to_string(max_group_devices) + " device ids");
    for (const auto& id : d) {
      if (!id.is_string() || id.get_ref<const std::string&>().empty() ||
          !is_printable(id.get_ref<const std::string&>(), max_device_id))
        return bad("'devices' must hold device ids: 1-256 printable characters");
      g.devices.insert(id.get<std::string>());
    }
  }
  if (g.match.empty() && g.devices.empty()) return bad("a group needs 'match' conditions or a 'devices' list");
  return g;
}

std::optional<int> parse_utc_offset(const std::string& tz) {
  std::string s = tz;
  if (s == "UTC" || s == "Z" || s == "GMT") return 0;
  if (s.rfind("UTC", 0) == 0) s = s.substr(3);
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return std::nullopt;
  for (int i : {1, 2, 4, 5})
    if (!std::isdigit(static_cast<unsigned char>(s[static_cast<std::size_t>(i)]))) return std::nullopt;
  const int h = (s[1] - '0') * 10 + (s[2] - '0'), m = (s[4] - '0') * 10 + (s[5] - '0');
  if (h > 14 || m > 59) return std::nullopt;
  return (s[0] == '-' ? -1 : 1) * (h * 60 + m);
}

core::result<maintenance_window> parse_window(const nlohmann::json& doc) {
  if (!doc.is_object()) return bad("'window' must be an object {\"days\", \"start\", \"end\", \"tz\"}");
  MALLORN_TRY(only_fields(doc, {"days", "start", "end", "tz"}, "window"));
  maintenance_window w;
  if (doc.contains("days") && !doc["days"].is_null()) {
    const auto& d = doc["days"];
    if (!d.is_array() || d.empty() || d.size() > 7) return bad("'window.days' must list 1-7 of mon..sun");
    w.days = 0;
    for (const auto& day : d) {
      const auto* name = day.is_string() ? &day.get_ref<const std::string&>() : nullptr;
      auto it = name ? std::find(std::begin(day_names), std::end(day_names), *name) : std::end(day_names);
      if (it == std::end(day_names)) return bad("'window.days' must list 1-7 of mon..sun");
      w.days = static_cast<std::uint8_t>(w.days | (1u << (it - std::begin(day_names))));
    }
  }
  auto start = doc.contains("start") ? parse_clock(doc["start"]) : std::nullopt;
  auto end = doc.contains("end") ? parse_clock(doc["end"]) : std::nullopt;
  if (!start || !end) return bad("'window.start' and 'window.end' are required, as \"HH:MM\"");
  if (*start == *end) return bad("'window.start' and 'window.end' must differ");
  w.start_minute = *start;
  w.end_minute = *end;
  if (doc.contains("tz") && !doc["tz"].is_null()) {
    if (!doc["tz"].is_string()) return bad("'window.tz' must be a string");
    const auto& tz = doc["tz"].get_ref<const std::string&>();
    // Whether a zone name exists is the engine's question (it has the zone database).
    if (!parse_utc_offset(tz) && !is_zone_name(tz))
      return bad("'window.tz' must be a UTC offset (\"UTC\", \"+02:00\", \"-05:30\") or a zone name such as \"Europe/Berlin\"");
    w.tz = tz;
  }
  return w;
}

bool maintenance_window::open_at(std::int64_t t, const time_zone& zone) const {
  const std::int64_t local = t + zone.offset_at(t);
  const std::int64_t day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  const int minute = static_cast<int>((local - day * 86400) / 60);
  const int weekday = static_cast<int>(((day % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday (index 3)
  auto day_on = [&](int wd) { return (days >> ((wd % 7 + 7) % 7)) & 1u; };
  if (start_minute < end_minute) return day_on(weekday) && minute >= start_minute && minute < end_minute;
  // Spans midnight: the evening belongs to this day's window, the morning to yesterday's.
  if (minute >= start_minute) return day_on(weekday);
  if (minute < end_minute) return day_on(weekday - 1);
  return false;
}

std::int64_t maintenance_window::next_open(std::int64_t t, const time_zone& zone) const {
  if (open_at(t, zone)) return t;
  // Windows open on a local minute boundary, and zone offsets are whole minutes: look ahead
  // minute by minute from the next UTC minute, at most 8 days (a closed window always opens
  // within a week, a summer-time change moves it by at most a few hours).
  std::int64_t m = (t >= 0 ? t / 60 : (t - 59) / 60) + 1;
  for (int i = 0; i < 8 * 24 * 60; ++i, ++m)
    if (open_at(m * 60, zone)) return m * 60;
  return t;
}

nlohmann::json maintenance_window::to_json() const {
  nlohmann::json d = nlohmann::json::array();
  for (int i = 0; i < 7; ++i)
    if ((days >> i) & 1u) d.push_back(day_names[i]);
  return {{"days", d}, {"start", clock_text(start_minute)}, {"end", clock_text(end_minute)}, {"tz", tz}};
}

nlohmann::json rollout_spec::to_json() const {
  nlohmann::json out = {{"model", model},
                        {"version", version},
                        {"group", group.empty() ? nlohmann::json(nullptr) : nlohmann::json(group)},
                        {"stages", stages},
                        {"stage_min_seconds", stage_min_seconds},
                        {"max_failure_rate", max_failure_rate},
                        {"min_reports", min_reports},
                        {"pause_timeout_seconds", pause_timeout_seconds},
                        {"start_at", start_at}};
  out["window"] = window ? window->to_json() : nlohmann::json(nullptr);
  return out;
}

core::result<rollout_spec> parse_rollout(const nlohmann::json& doc) {
  if (!doc.is_object()) return bad("a rollout must be a JSON object");
  MALLORN_TRY(only_fields(doc, {"model", "version", "group", "stages", "stage_min_seconds", "max_failure_rate",
                                "min_reports", "pause_timeout_seconds", "start_at", "window"},
                          "rollout"));
  rollout_spec s;
  auto model = name_field(doc, "model", true);
  if (!model) return model.err();
  auto version = name_field(doc, "version", true);
  if (!version) return version.err();
  auto group = name_field(doc, "group", false);
  if (!group) return group.err();
  s.model = *model;
  s.version = *version;
  s.group = *group;
  if (!doc.contains("stages") || !doc["stages"].is_array() || doc["stages"].empty() || doc["stages"].size() > max_stages)
    return bad("'stages' must be a list of 1-" + std::to_string(max_stages) + " percentages, e.g. [1, 10, 50, 100]");
  for (const auto& p : doc["stages"]) {
    if (!p.is_number() || !std::isfinite(p.get<double>()) || p.get<double>() <= 0 || p.get<double>() > 100)
      return bad("'stages' must hold percentages in (0, 100]");
    const double v = std::round(p.get<double>() * 100) / 100;  // buckets are 0.01 %
    if (v <= 0) return bad("'stages' must hold percentages in (0, 100], at least 0.01");
    if (!s.stages.empty() && v <= s.stages.back()) return bad("'stages' must be strictly increasing");
    s.stages.push_back(v);
  }
  auto min_seconds = integer_field(doc, "stage_min_seconds", 0, 365ll * 86400, s.stage_min_seconds);
  if (!min_seconds) return min_seconds.err();
  s.stage_min_seconds = *min_seconds;
  if (doc.contains("max_failure_rate") && !doc["max_failure_rate"].is_null()) {
    const auto& r = doc["max_failure_rate"];
    if (!r.is_number() || !std::isfinite(r.get<double>()) || r.get<double>() < 0 || r.get<double>() > 1)
      return bad("'max_failure_rate' must be a number between 0 and 1");
    s.max_failure_rate = r.get<double>();
  }
  auto min_reports = integer_field(doc, "min_reports", 1, 1000000, s.min_reports);
  if (!min_reports) return min_reports.err();
  s.min_reports = *min_reports;
  auto pause_timeout = integer_field(doc, "pause_timeout_seconds", 0, 365ll * 86400, 0);
  if (!pause_timeout) return pause_timeout.err();
  s.pause_timeout_seconds = *pause_timeout;
  auto start_at = integer_field(doc, "start_at", 0, 253402300799ll, 0);  // up to year 9999
  if (!start_at) return start_at.err();
  s.start_at = *start_at;
  if (doc.contains("window") && !doc["window"].is_null()) {
    auto w = parse_window(doc["window"]);
    if (!w) return w.err();
    s.window = *w;
  }
  return s;
}

core::result<device_tags> parse_tags(const nlohmann::json& doc) {
  if (!doc.is_object()) return bad("'tags' must be an object of string values");
  if (doc.size() > max_tags) return bad("'tags' has more than " + std::to_string(max_tags) + " keys");
  device_tags out;
  for (const auto& [k, v] : doc.items()) {
    if (!is_fleet_name(k)) return bad("'tags': keys must be 1-64 characters of A-Z a-z 0-9 . _ -");
    if (!v.is_string() || !is_printable(v.get_ref<const std::string&>(), max_tag_value))
      return bad("'tags." + k + "' must be a string of at most 256 printable characters");
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

std::uint32_t rollout_bucket(std::int64_t rollout_id, const std::string& device_id) {
  // FNV-1a over "<id>:<device>", then a splitmix64 finaliser for an even spread: cheap, stable
  // across platforms and releases (changing it would reshuffle every running rollout).
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ull;
  };
  for (char c : std::to_string(rollout_id)) mix(static_cast<unsigned char>(c));
  mix(':');
  for (char c : device_id) mix(static_cast<unsigned char>(c));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<std::uint32_t>(h % 10000);
}

bool in_stage(std::int64_t rollout_id, const std::string& device_id, double percent) {
  return rollout_bucket(rollout_id, device_id) < static_cast<std::uint32_t>(std::lround(percent * 100));
}

}  // namespace mallorn::server::fleet
