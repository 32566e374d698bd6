// The rollout engine: memory is a cache of the database; every change is written (journaled)
// first and applied to memory after the write succeeded.
#include "mallorn/server/fleet/rollout_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "mallorn/core/log_safe.hpp"
#include "mallorn/server/index_db.hpp"
#include "mallorn/server/storage/sql_database.hpp"

namespace mallorn::server::fleet {
namespace {

using storage::sql_value;

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<device_progress> progress_of(const std::string& report_state) {
  if (report_state == "committed") return device_progress::committed;
  if (report_state == "failed") return device_progress::failed;
  if (report_state == "rolled_back") return device_progress::rolled_back;
  if (report_state == "idle" || report_state == "checking") return std::nullopt;
  return device_progress::downloading;  // downloading .. health_check, rolling_back, interrupted
}

std::optional<device_progress> parse_progress(const std::string& s) {
  for (std::size_t i = 0; i < device_progress_count; ++i)
    if (progress_name(static_cast<device_progress>(i)) == s) return static_cast<device_progress>(i);
  return std::nullopt;
}

bool is_final(device_progress p) {
  return p == device_progress::committed || p == device_progress::failed || p == device_progress::rolled_back;
}

core::error refused(const std::string& message) { return core::make_error(core::errc::invalid_argument, message); }

}  // namespace

std::string_view progress_name(device_progress p) {
  switch (p) {
    case device_progress::offered: return "offered";
    case device_progress::downloading: return "downloading";
    case device_progress::committed: return "committed";
    case device_progress::failed: return "failed";
    case device_progress::rolled_back: return "rolled_back";
  }
  return "?";
}

std::uint64_t rollout_counts::reports() const {
  return by_state[static_cast<int>(device_progress::committed)] + by_state[static_cast<int>(device_progress::failed)] +
         by_state[static_cast<int>(device_progress::rolled_back)];
}

double rollout_counts::failure_rate() const {
  const auto n = reports();
  if (!n) return 0;
  return double(by_state[static_cast<int>(device_progress::failed)] +
                by_state[static_cast<int>(device_progress::rolled_back)]) / double(n);
}

std::vector<storage::migration> rollout_engine::migrations() {
  auto ddl = [](const char* serial) {
    return std::string(R"sql(
CREATE TABLE fleet_groups(name TEXT PRIMARY KEY, spec TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE rollouts(
  id )sql") + serial + R"sql(, model TEXT NOT NULL, version TEXT NOT NULL, version_number BIGINT NOT NULL,
  spec TEXT NOT NULL, state TEXT NOT NULL, stage BIGINT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL,
  stage_started_at BIGINT NOT NULL, paused_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX rollouts_by_model ON rollouts(model, id);
CREATE TABLE rollout_events(
  seq )sql" + serial + R"sql(, rollout_id BIGINT NOT NULL, at BIGINT NOT NULL, actor TEXT NOT NULL,
  event TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, stage BIGINT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX rollout_events_by_rollout ON rollout_events(rollout_id, seq);
CREATE TABLE rollout_devices(
  rollout_id BIGINT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL, bytes BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, PRIMARY KEY(rollout_id, device_id));
)sql";
  };
  return {{200, "fleet: groups, rollouts, rollout journal, per-device rollout progress",
           ddl("INTEGER PRIMARY KEY AUTOINCREMENT"), ddl("BIGSERIAL PRIMARY KEY")}};
}

rollout_engine::rollout_engine(index_db& db, engine_options opts) : db_(db), opts_(std::move(opts)) {
  if (!opts_.now) opts_.now = system_now;
  if (!opts_.zones) opts_.zones = std::make_shared<zoneinfo_source>();
}
rollout_engine::~rollout_engine() = default;

core::result<std::unique_ptr<rollout_engine>> rollout_engine::open(index_db& db, engine_options opts) {
  if (auto r = storage::apply_migrations(db.database(), migrations()); !r) return r.err();
  std::unique_ptr<rollout_engine> e(new rollout_engine(db, std::move(opts)));
  if (auto r = e->load(); !r) return r.err().with("fleet: loading rollouts");
  return e;
}

core::result<void> rollout_engine::load() {
  auto& sql = db_.database();
  auto groups = sql.query("SELECT name, spec FROM fleet_groups");
  if (!groups) return groups.err();
  for (const auto& row : *groups) {
    auto doc = nlohmann::json::parse(row.text(1), nullptr, false);
    auto g = parse_group(doc);
    if (!g) return g.err().with("group " + row.text(0));
    groups_[g->name] = *g;
  }
  auto rows = sql.query(
      "SELECT id, spec, version_number, state, stage, created_at, created_by, stage_started_at, paused_at, updated_at, "
      "reason FROM rollouts ORDER BY id");
  if (!rows) return rows.err();
  for (const auto& row : *rows) {
    rollout r;
    r.id = row.integer(0);
    auto spec = parse_rollout(nlohmann::json::parse(row.text(1), nullptr, false));
    if (!spec) return spec.err().with("rollout " + std::to_string(r.id));
    r.spec = *spec;
    r.version_number = row.integer(2);
    auto st = parse_state(row.text(3));
    if (!st) return refused("rollout " + std::to_string(r.id) + " has an unknown state " + row.text(3));
    r.state = *st;
    r.stage = static_cast<std::size_t>(row.integer(4));
    r.created_at = row.integer(5);
    r.created_by = row.text(6);
    r.stage_started_at = row.integer(7);
    r.paused_at = row.integer(8);
    r.updated_at = row.integer(9);
    r.reason = row.text(10);
    r.window_zone = std::make_shared<const fixed_zone>(0);
    if (r.spec.window) {
      if (auto z = resolve_zone(*opts_.zones, r.spec.window->tz)) r.window_zone = z;
      else spdlog::error("fleet: rollout {}: time zone '{}' is gone from the zone database; its window runs in UTC",
                         r.id, r.spec.window->tz);
    }
    rollouts_[r.id] = r;
    by_model_[r.spec.model].insert(by_model_[r.spec.model].begin(), r.id);
  }
  auto devices = sql.query("SELECT rollout_id, device_id, state, bytes FROM rollout_devices");
  if (!devices) return devices.err();
  for (const auto& row : *devices) {
    auto it = rollouts_.find(row.integer(0));
    auto p = parse_progress(row.text(2));
    if (it == rollouts_.end() || !p) continue;
    const auto bytes = static_cast<std::uint64_t>(row.integer(3));
    devices_[it->first][row.text(1)] = {*p, bytes};
    it->second.counts.by_state[static_cast<int>(*p)]++;
    it->second.counts.bytes_served += bytes;
  }
  return {};
}

// ---- check-update ---------------------------------------------------------------------------

bool rollout_engine::has_rollouts(const std::string& model) const {
  std::shared_lock lock(mutex_);
  return by_model_.count(model) > 0;
}

decision rollout_engine::decide(const std::string& model, const std::string& device_id, const device_tags& tags,
                                std::uint64_t current_rank,
                                const std::function<std::uint64_t(const std::string&)>& rank_of) {
  std::shared_lock lock(mutex_);
  auto ids = by_model_.find(model);
  if (ids == by_model_.end()) return {};
  decision d;
  d.what = decision::kind::hold;
  if (device_id.empty()) return d;  // membership needs an identity
  for (std::int64_t id : ids->second) {
    const rollout& r = rollouts_.at(id);
    if (r.state != rollout_state::running && r.state != rollout_state::completed) continue;
    if (!r.spec.group.empty()) {
      auto g = groups_.find(r.spec.group);
      if (g == groups_.end() || !g->second.matches(device_id, tags)) continue;
    }
    const double pct = r.state == rollout_state::completed ? r.spec.stages.back() : r.stage_percent();
    if (!in_stage(r.id, device_id, pct)) continue;
    const std::uint64_t target_rank = rank_of(r.spec.version);
    if (!target_rank) continue;  // the version left the store
    // Downgrade protection: a device ahead of this rollout keeps what it has.
    if (current_rank && target_rank < current_rank) return d;
    if (r.state == rollout_state::running && r.spec.window && current_rank != target_rank) {
      auto tz = tags.find("tz");
      const auto zone = tz != tags.end() ? device_zone(tz->second, r) : r.window_zone;
      const std::int64_t now = opts_.now();
      if (!r.spec.window->open_at(now, *zone)) {
        d.what = decision::kind::outside_window;
        d.version = r.spec.version;
        d.rollout_id = r.id;
        d.next_window_start = r.spec.window->next_open(now, *zone);
        return d;
      }
    }
    d.what = decision::kind::offer;
    d.version = r.spec.version;
    d.rollout_id = r.id;
    return d;
  }
  return d;
}

std::shared_ptr<const time_zone> rollout_engine::device_zone(const std::string& tz, const rollout& r) {
  if (auto z = resolve_zone(*opts_.zones, tz)) return z;
  std::lock_guard lock(bad_zones_mutex_);
  ++bad_zone_fallbacks_;
  if (bad_zones_logged_.size() < 100 && bad_zones_logged_.insert(tz).second)
    spdlog::warn("fleet: a device's tz tag '{}' is not a time zone; using rollout {}'s '{}' (logged once per name)",
                 core::log_safe(tz), r.id, r.spec.window->tz);
  return r.window_zone;
}

void rollout_engine::note_offered(std::int64_t rollout_id, const std::string& device_id) {
  {
    std::shared_lock lock(mutex_);
    auto it = devices_.find(rollout_id);
    if (it != devices_.end() && it->second.count(device_id)) return;
  }
  std::lock_guard lock(offers_mutex_);
  if (pending_offers_.size() < 1000000) pending_offers_.emplace_back(rollout_id, device_id);
}

// ---- reports --------------------------------------------------------------------------------

void rollout_engine::on_report(const device_report& rep) {
  if (rep.model.empty() || rep.to_version.empty()) return;
  auto p = progress_of(rep.state);
  if (!p) return;
  // Reporters one at a time (their order is the devices' order), and the index write outside
  // mutex_: check-updates read the rollouts under it (decide()) and must not wait on a database
  // write (issue 18). Only reporters change a device's progress, so what is read here holds.
  std::lock_guard reporting(report_mutex_);
  std::int64_t rollout_id = 0;
  std::uint64_t bytes = 0;
  {
    std::shared_lock lock(mutex_);
    auto ids = by_model_.find(rep.model);
    if (ids == by_model_.end()) return;
    for (std::int64_t id : ids->second) {
      const auto& candidate = rollouts_.at(id);
      if (candidate.spec.version == rep.to_version && candidate.state != rollout_state::scheduled) {
        rollout_id = id;
        break;
      }
    }
    if (!rollout_id) return;
    const std::pair<device_progress, std::uint64_t>* prev = nullptr;
    if (auto devs = devices_.find(rollout_id); devs != devices_.end())
      if (auto it = devs->second.find(rep.device_id); it != devs->second.end()) prev = &it->second;
    // A late progress report does not undo a final one.
    if (prev && is_final(prev->first) && !is_final(*p)) return;
    bytes = std::max<std::uint64_t>(rep.bytes_downloaded, prev ? prev->second : 0);
  }
  const std::int64_t now = opts_.now();
  auto saved = db_.database().exec(
      "INSERT INTO rollout_devices(rollout_id, device_id, state, bytes, updated_at) VALUES(?, ?, ?, ?, ?) "
      "ON CONFLICT(rollout_id, device_id) DO UPDATE SET state = excluded.state, bytes = excluded.bytes, "
      "updated_at = excluded.updated_at",
      {rollout_id, rep.device_id, std::string(progress_name(*p)), static_cast<std::int64_t>(bytes), now});
  if (!saved) {
    spdlog::error("fleet: rollout {}: recording a report: {}", rollout_id, saved.err().what());
    return;
  }
  std::unique_lock lock(mutex_);
  auto found = rollouts_.find(rollout_id);
  if (found == rollouts_.end()) return;  // deleted meanwhile
  rollout* r = &found->second;
  auto& devs = devices_[rollout_id];
  auto prev = devs.find(rep.device_id);  // an offer may have been recorded meanwhile
  if (prev != devs.end()) {
    r->counts.by_state[static_cast<int>(prev->second.first)]--;
    r->counts.bytes_served -= prev->second.second;
  }
  devs[rep.device_id] = {*p, bytes};
  r->counts.by_state[static_cast<int>(*p)]++;
  r->counts.bytes_served += bytes;
  const bool gate_may_close = is_final(*p) && health_pause_due(*r);
  lock.unlock();
  if (gate_may_close) {
    std::lock_guard writing(writer_mutex_);
    pause_if_unhealthy(rollout_id);
  }
}

transition_facts rollout_engine::facts_of(const rollout& r) const {
  transition_facts f;
  const std::int64_t now = opts_.now();
  const auto& c = r.counts;
  const bool enough = c.reports() >= static_cast<std::uint64_t>(r.spec.min_reports);
  f.start_time_reached = now >= r.spec.start_at;
  f.has_next_stage = r.stage + 1 < r.spec.stages.size();
  f.health_gate_crossed = enough && c.failure_rate() > r.spec.max_failure_rate;
  f.health_gate_open = enough && c.failure_rate() <= r.spec.max_failure_rate && now - r.stage_started_at >= r.spec.stage_min_seconds;
  f.pause_timed_out = r.spec.pause_timeout_seconds > 0 && r.paused_at > 0 && now - r.paused_at >= r.spec.pause_timeout_seconds;
  return f;
}

std::optional<std::string> rollout_engine::health_pause_due(const rollout& r) const {
  if (r.state != rollout_state::running) return std::nullopt;
  if (!next_state(r.state, rollout_event::health_pause, facts_of(r))) return std::nullopt;
  char why[200];
  std::snprintf(why, sizeof why, "failure rate %.3f over %llu reports is above the threshold %.3f",
                r.counts.failure_rate(), static_cast<unsigned long long>(r.counts.reports()), r.spec.max_failure_rate);
  return std::string(why);
}

void rollout_engine::pause_if_unhealthy(std::int64_t id) {
  std::optional<std::string> why;
  std::optional<rollout_state> to;
  {
    std::shared_lock lock(mutex_);
    auto it = rollouts_.find(id);
    if (it == rollouts_.end()) return;
    why = health_pause_due(it->second);
    to = next_state(it->second.state, rollout_event::health_pause, facts_of(it->second));
  }
  if (!why || !to) return;  // another writer paused it meanwhile
  if (auto t = transition(id, rollout_event::health_pause, *to, "engine", *why); !t)
    spdlog::error("fleet: rollout {}: {}", id, t.err().what());
}

// ---- transitions ----------------------------------------------------------------------------

core::result<void> rollout_engine::transition(std::int64_t id, rollout_event ev, rollout_state to, const std::string& actor,
                                              const std::string& reason) {
  // Decided and journaled outside mutex_ (the caller holds writer_mutex_, so no other transition
  // can come between), applied under it: check-updates read the rollouts under mutex_ and must not
  // wait for this write (issue 18). Until it is applied they see the state before it, as if they
  // had come a moment earlier; the journal never holds a state the rollout did not enter.
  const std::int64_t now = opts_.now();
  rollout next;
  {
    std::shared_lock lock(mutex_);
    auto it = rollouts_.find(id);
    if (it == rollouts_.end()) return core::make_error(core::errc::io_error, "no rollout " + std::to_string(id));
    next = it->second;
  }
  const rollout_state from = next.state;
  next.state = to;
  next.updated_at = now;
  next.reason = reason;
  if ((ev == rollout_event::advance || ev == rollout_event::auto_advance) && to == rollout_state::running) {
    ++next.stage;
    next.stage_started_at = now;
  }
  if (ev == rollout_event::start || ev == rollout_event::resume) next.stage_started_at = now;
  if (to == rollout_state::paused) next.paused_at = now;
  if (to == rollout_state::running) next.paused_at = 0;
  auto written = db_.database().transaction([&](storage::sql_session& s) -> core::result<void> {
    MALLORN_TRY(s.exec(
        "INSERT INTO rollout_events(rollout_id, at, actor, event, from_state, to_state, stage, reason) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
        {id, now, actor, std::string(event_name(ev)), std::string(state_name(from)), std::string(state_name(to)),
         static_cast<std::int64_t>(next.stage), reason}));
    return s.exec(
        "UPDATE rollouts SET state = ?, stage = ?, stage_started_at = ?, paused_at = ?, updated_at = ?, reason = ? "
        "WHERE id = ?",
        {std::string(state_name(to)), static_cast<std::int64_t>(next.stage), next.stage_started_at, next.paused_at, now,
         reason, id});
  });
  if (!written) return written.err();
  std::unique_lock lock(mutex_);
  ++transitions_[std::string(event_name(ev))];
  if (ev == rollout_event::health_pause) ++health_pauses_;
  // Only the transition's own fields: reports and offers went on counting meanwhile.
  if (auto it = rollouts_.find(id); it != rollouts_.end()) {
    rollout& r = it->second;
    r.state = next.state;
    r.stage = next.stage;
    r.stage_started_at = next.stage_started_at;
    r.paused_at = next.paused_at;
    r.updated_at = next.updated_at;
    r.reason = next.reason;
  }
  lock.unlock();
  spdlog::info("fleet: rollout {} ({} {}): {} -> {} by {} (stage {}%): {}", id, next.spec.model, next.spec.version,
               state_name(from), state_name(to), actor, next.stage_percent(), reason);
  if (ev == rollout_event::health_pause)
    spdlog::warn("fleet: rollout {} ({} {}) paused itself: {}", id, next.spec.model, next.spec.version, reason);
  return {};
}

core::result<rollout> rollout_engine::create(const rollout_spec& spec, std::int64_t version_number, const std::string& actor) {
  std::shared_ptr<const time_zone> zone = std::make_shared<const fixed_zone>(0);
  if (spec.window) {
    zone = resolve_zone(*opts_.zones, spec.window->tz);
    if (!zone) return refused("unknown time zone '" + spec.window->tz + "': not in the server's zone database");
  }
  std::lock_guard writing(writer_mutex_);
  {
    std::shared_lock lock(mutex_);
    if (!spec.group.empty() && !groups_.count(spec.group)) return refused("unknown group '" + spec.group + "'");
  }
  const std::int64_t now = opts_.now();
  rollout r;
  r.window_zone = zone;
  r.spec = spec;
  r.version_number = version_number;
  r.state = spec.start_at > now ? rollout_state::scheduled : rollout_state::running;
  r.created_at = r.updated_at = r.stage_started_at = now;
  r.created_by = actor;
  r.reason = "created";
  const std::string spec_text = spec.to_json().dump();
  auto written = db_.database().transaction([&](storage::sql_session& s) -> core::result<void> {
    auto rows = s.query(
        "INSERT INTO rollouts(model, version, version_number, spec, state, stage, created_at, created_by, "
        "stage_started_at, paused_at, updated_at, reason) VALUES(?, ?, ?, ?, ?, 0, ?, ?, ?, 0, ?, ?) RETURNING id",
        {spec.model, spec.version, version_number, spec_text, std::string(state_name(r.state)), now, actor, now, now,
         r.reason});
    if (!rows) return rows.err();
    if (rows->empty()) return core::make_error(core::errc::io_error, "INSERT ... RETURNING gave no id");
    r.id = (*rows)[0].integer(0);
    return s.exec(
        "INSERT INTO rollout_events(rollout_id, at, actor, event, from_state, to_state, stage, reason) "
        "VALUES(?, ?, ?, 'create', '', ?, 0, ?)",
        {r.id, now, actor, std::string(state_name(r.state)), std::string("created")});
  });
  if (!written) return written.err();
  std::unique_lock lock(mutex_);
  rollouts_[r.id] = r;
  by_model_[spec.model].insert(by_model_[spec.model].begin(), r.id);
  lock.unlock();
  spdlog::info("fleet: rollout {} created by {}: {} {} to {} in stages {} ({})", r.id, actor, spec.model, spec.version,
               spec.group.empty() ? "every device" : "group " + spec.group, nlohmann::json(spec.stages).dump(),
               state_name(r.state));
  return r;
}

std::vector<rollout> rollout_engine::list() const {
  std::shared_lock lock(mutex_);
  std::vector<rollout> out;
  for (auto it = rollouts_.rbegin(); it != rollouts_.rend(); ++it) out.push_back(it->second);
  return out;
}

std::optional<rollout> rollout_engine::find(std::int64_t id) const {
  std::shared_lock lock(mutex_);
  auto it = rollouts_.find(id);
  if (it == rollouts_.end()) return std::nullopt;
  return it->second;
}

core::result<rollout> rollout_engine::act(std::int64_t id, rollout_event ev, const std::string& actor,
                                          const std::string& reason) {
  std::lock_guard writing(writer_mutex_);
  std::optional<rollout_state> to;
  {
    std::shared_lock lock(mutex_);
    auto it = rollouts_.find(id);
    if (it == rollouts_.end()) return core::make_error(core::errc::io_error, "no rollout " + std::to_string(id));
    const auto f = facts_of(it->second);
    to = next_state(it->second.state, ev, f);
    if (!to) return refused(refusal(it->second.state, ev, f));
  }
  MALLORN_TRY(transition(id, ev, *to, actor, reason.empty() ? "by the operator" : reason));
  std::shared_lock lock(mutex_);
  return rollouts_.at(id);  // only writers remove rollouts, and this one holds writer_mutex_
}

core::result<std::vector<transition_record>> rollout_engine::history(std::int64_t id) const {
  auto rows = db_.database().query(
      "SELECT at, actor, event, from_state, to_state, stage, reason FROM rollout_events WHERE rollout_id = ? "
      "ORDER BY seq",
      {id});
  if (!rows) return rows.err();
  std::vector<transition_record> out;
  for (const auto& row : *rows)
    out.push_back({id, row.integer(0), row.text(1), row.text(2), row.text(3), row.text(4), row.text(6), row.integer(5)});
  return out;
}

// ---- groups ---------------------------------------------------------------------------------

core::result<void> rollout_engine::put_group(const group_spec& g) {
  std::lock_guard writing(writer_mutex_);  // the index write outside mutex_, as for transitions
  MALLORN_TRY(db_.database().exec(
      "INSERT INTO fleet_groups(name, spec, updated_at) VALUES(?, ?, ?) "
      "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
      {g.name, g.to_json().dump(), opts_.now()}));
  std::unique_lock lock(mutex_);
  groups_[g.name] = g;
  return {};
}

core::result<void> rollout_engine::delete_group(const std::string& name) {
  std::lock_guard writing(writer_mutex_);
  {
    std::shared_lock lock(mutex_);
    if (!groups_.count(name)) return core::make_error(core::errc::io_error, "no group " + name);
    for (const auto& [id, r] : rollouts_)
      if (r.spec.group == name && !is_terminal(r.state))
        return refused("group '" + name + "' is used by rollout " + std::to_string(id) + " (" +
                       std::string(state_name(r.state)) + ")");
  }
  MALLORN_TRY(db_.database().exec("DELETE FROM fleet_groups WHERE name = ?", {name}));
  std::unique_lock lock(mutex_);
  groups_.erase(name);
  return {};
}

std::vector<group_spec> rollout_engine::groups() const {
  std::shared_lock lock(mutex_);
  std::vector<group_spec> out;
  for (const auto& [n, g] : groups_) out.push_back(g);
  return out;
}

std::optional<group_spec> rollout_engine::group(const std::string& name) const {
  std::shared_lock lock(mutex_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

// ---- time -----------------------------------------------------------------------------------

core::result<void> rollout_engine::flush_offers() {
  std::vector<std::pair<std::int64_t, std::string>> batch;
  {
    std::lock_guard lock(offers_mutex_);
    batch.swap(pending_offers_);
  }
  if (batch.empty()) return {};
  // The rows first, then the counts, and mutex_ never held across the index write: check-updates
  // read the rollouts under it (decide()) and must not wait on a database write (issue 18).
  std::vector<std::pair<std::int64_t, std::string>> fresh;
  {
    std::shared_lock lock(mutex_);
    for (auto& [id, dev] : batch) {
      auto devs = devices_.find(id);
      if (!rollouts_.count(id) || (devs != devices_.end() && devs->second.count(dev))) continue;
      fresh.emplace_back(id, std::move(dev));
    }
  }
  if (fresh.empty()) return {};
  const std::int64_t now = opts_.now();
  // Not written: the offers are not counted either; the devices are queued again on their next poll.
  MALLORN_TRY(db_.database().transaction([&](storage::sql_session& s) -> core::result<void> {
    for (const auto& [id, dev] : fresh)
      MALLORN_TRY(s.exec(
          "INSERT INTO rollout_devices(rollout_id, device_id, state, bytes, updated_at) VALUES(?, ?, 'offered', 0, ?) "
          "ON CONFLICT(rollout_id, device_id) DO NOTHING",
          {id, dev, now}));
    return {};
  }));
  std::unique_lock lock(mutex_);
  for (auto& [id, dev] : fresh) {
    auto r = rollouts_.find(id);
    if (r == rollouts_.end()) continue;  // deleted meanwhile
    auto& devs = devices_[id];
    // A report got there first (its row wins over DO NOTHING too), or the batch named the device twice.
    if (devs.count(dev)) continue;
    devs[dev] = {device_progress::offered, 0};
    r->second.counts.by_state[static_cast<int>(device_progress::offered)]++;
  }
  return {};
}

void rollout_engine::tick() {
  if (auto r = flush_offers(); !r) spdlog::error("fleet: recording offers: {}", r.err().what());
  std::lock_guard writing(writer_mutex_);
  // Decided under the shared lock, journaled and applied one by one without it (transition()).
  struct due {
    std::int64_t id;
    rollout_event ev;
    rollout_state to;
    std::string why;
  };
  std::vector<due> transitions;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [id, r] : rollouts_) {
      if (is_terminal(r.state)) continue;
      const auto f = facts_of(r);
      auto propose = [&](rollout_event ev, std::string why) {
        if (auto to = next_state(r.state, ev, f)) transitions.push_back({id, ev, *to, std::move(why)});
      };
      switch (r.state) {
        case rollout_state::scheduled: propose(rollout_event::start, "start time reached"); break;
        case rollout_state::running:
          if (f.health_gate_crossed) {
            if (auto why = health_pause_due(r)) propose(rollout_event::health_pause, *why);
          } else {
            char why[160];
            std::snprintf(why, sizeof why, "stage held %llds; failure rate %.3f over %llu reports",
                          static_cast<long long>(opts_.now() - r.stage_started_at), r.counts.failure_rate(),
                          static_cast<unsigned long long>(r.counts.reports()));
            propose(rollout_event::auto_advance, why);
          }
          break;
        case rollout_state::paused:
          propose(rollout_event::pause_timeout,
                  "paused longer than pause_timeout_seconds (" + std::to_string(r.spec.pause_timeout_seconds) + ")");
          break;
        default: break;
      }
    }
  }
  for (const auto& t : transitions) {
    if (auto r = transition(t.id, t.ev, t.to, "engine", t.why); !r) {
      spdlog::error("fleet: rollout {}: {}", t.id, r.err().what());
    } else if (t.ev == rollout_event::pause_timeout) {
      spdlog::warn("fleet: rollout {} aborted: {} without a decision", t.id, t.why);
    }
  }
}

void rollout_engine::render_metrics(std::string& out) const {
  std::shared_lock lock(mutex_);
  out += "# HELP mallornd_rollout_devices Devices per rollout and progress state.\n";
  out += "# TYPE mallornd_rollout_devices gauge\n";
  for (const auto& [id, r] : rollouts_)
    for (std::size_t i = 0; i < device_progress_count; ++i)
      out += "mallornd_rollout_devices{rollout=\"" + std::to_string(id) + "\",state=\"" +
             std::string(progress_name(static_cast<device_progress>(i))) + "\"} " +
             std::to_string(r.counts.by_state[i]) + "\n";
  out += "# HELP mallornd_rollout_state 1 for the state each rollout is in.\n";
  out += "# TYPE mallornd_rollout_state gauge\n";
  for (const auto& [id, r] : rollouts_)
    for (auto st : {rollout_state::scheduled, rollout_state::running, rollout_state::paused, rollout_state::completed,
                    rollout_state::aborted})
      out += "mallornd_rollout_state{rollout=\"" + std::to_string(id) + "\",state=\"" + std::string(state_name(st)) +
             "\"} " + (r.state == st ? "1" : "0") + "\n";
  out += "# HELP mallornd_rollout_stage_percent The current stage of each rollout, in percent of its devices.\n";
  out += "# TYPE mallornd_rollout_stage_percent gauge\n";
  for (const auto& [id, r] : rollouts_)
    out += "mallornd_rollout_stage_percent{rollout=\"" + std::to_string(id) + "\"} " +
           std::to_string(r.state == rollout_state::completed ? r.spec.stages.back() : r.stage_percent()) + "\n";
  out += "# HELP mallornd_rollout_transitions_total Rollout state transitions since mallornd started, by event.\n";
  out += "# TYPE mallornd_rollout_transitions_total counter\n";
  for (const auto& [event, n] : transitions_)
    out += "mallornd_rollout_transitions_total{event=\"" + event + "\"} " + std::to_string(n) + "\n";
  out += "# HELP mallornd_rollout_health_pauses_total Rollouts the health gate paused.\n";
  out += "# TYPE mallornd_rollout_health_pauses_total counter\n";
  out += "mallornd_rollout_health_pauses_total " + std::to_string(health_pauses_) + "\n";
  std::uint64_t fallbacks = 0;
  {
    std::lock_guard zones_lock(bad_zones_mutex_);
    fallbacks = bad_zone_fallbacks_;
  }
  out += "# HELP mallornd_rollout_device_zone_fallbacks_total Window checks where a device's tz tag named no zone (the rollout's tz was used).\n";
  out += "# TYPE mallornd_rollout_device_zone_fallbacks_total counter\n";
  out += "mallornd_rollout_device_zone_fallbacks_total " + std::to_string(fallbacks) + "\n";
}

}  // namespace mallorn::server::fleet
