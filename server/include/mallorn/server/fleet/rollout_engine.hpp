// The fleet rollout engine: rollouts and groups persisted in the index's database, cached in
// memory for check-update (a decision is a hash and a map lookup, never SQL), advanced or paused
// by a health gate fed by device reports, every transition journaled (who, when, why) before it
// takes effect.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "mallorn/core/error.hpp"
#include "mallorn/server/fleet/rollout_spec.hpp"
#include "mallorn/server/fleet/rollout_state.hpp"
#include "mallorn/server/fleet/time_zone.hpp"

namespace mallorn::server {
class index_db;
class catalog;
struct device_report;
namespace storage {
struct migration;
}
}  // namespace mallorn::server

namespace mallorn::server::fleet {

// Per-device progress in one rollout, from check-update (offered) and reports.
enum class device_progress { offered, downloading, committed, failed, rolled_back };
inline constexpr std::size_t device_progress_count = 5;
std::string_view progress_name(device_progress p);

struct rollout_counts {
  std::uint64_t by_state[device_progress_count] = {};
  std::uint64_t bytes_served = 0;
  std::uint64_t reports() const;  // devices with a final report (committed, failed, rolled_back)
  double failure_rate() const;    // (failed + rolled_back) / reports; 0 without reports
};

struct rollout {
  std::int64_t id = 0;
  rollout_spec spec;
  std::int64_t version_number = 0;  // the target version's number when the rollout was created
  rollout_state state = rollout_state::running;
  std::size_t stage = 0;  // index into spec.stages
  std::int64_t created_at = 0, stage_started_at = 0, paused_at = 0, updated_at = 0;
  std::string created_by, reason;  // reason: why it is in its state (last transition)
  rollout_counts counts;
  std::shared_ptr<const time_zone> window_zone;  // the window's tz, resolved (UTC without a window)
  double stage_percent() const { return spec.stages.empty() ? 0 : spec.stages[std::min(stage, spec.stages.size() - 1)]; }
};

struct transition_record {
  std::int64_t rollout_id = 0, at = 0;
  std::string actor, event, from_state, to_state, reason;
  std::int64_t stage = 0;
};

// What check-update should offer a device of one model.
struct decision {
  enum class kind {
    no_rollouts,     // the model has none: today's behaviour (latest / channel)
    offer,           // offer `version`
    hold,            // offer nothing new (stay on the current version)
    outside_window,  // covered, but the maintenance window is closed until next_window_start
  } what = kind::no_rollouts;
  std::string version;
  std::int64_t rollout_id = 0;
  std::int64_t next_window_start = 0;
};

struct engine_options {
  std::function<std::int64_t()> now;  // unix seconds; default: the system clock
  std::shared_ptr<zone_source> zones;  // window time zones; default: /usr/share/zoneinfo
};

class rollout_engine {
 public:
  // Applies the fleet migrations (200-299) to the index's database and loads every rollout, group
  // and per-device progress into memory.
  static core::result<std::unique_ptr<rollout_engine>> open(index_db& db, engine_options opts = {});
  static std::vector<storage::migration> migrations();
  ~rollout_engine();

  // ---- check-update hot path (no SQL) ----
  bool has_rollouts(const std::string& model) const;
  // `current_rank`: the device's version's rank (0 = unknown); `rank_of` maps a version to its rank.
  decision decide(const std::string& model, const std::string& device_id, const device_tags& tags,
                  std::uint64_t current_rank, const std::function<std::uint64_t(const std::string&)>& rank_of);
  // A device was offered rollout `id`'s version (counted once; persisted by tick()).
  void note_offered(std::int64_t rollout_id, const std::string& device_id);

  // ---- reports ----
  // A device report for (model, to_version): updates the matching rollout's counts and pauses it
  // at once when the health gate is crossed.
  void on_report(const device_report& r);

  // ---- operator ----
  core::result<rollout> create(const rollout_spec& spec, std::int64_t version_number, const std::string& actor);
  std::vector<rollout> list() const;
  std::optional<rollout> find(std::int64_t id) const;
  // pause | resume | advance | abort. errc::invalid_argument: the state does not allow it.
  core::result<rollout> act(std::int64_t id, rollout_event ev, const std::string& actor, const std::string& reason);
  core::result<std::vector<transition_record>> history(std::int64_t id) const;

  core::result<void> put_group(const group_spec& g);
  core::result<void> delete_group(const std::string& name);  // invalid_argument when in use
  std::vector<group_spec> groups() const;
  std::optional<group_spec> group(const std::string& name) const;

  // Time-driven transitions (start, auto-advance, pause timeout) and persistence of offers; the
  // daemon calls it every second, tests call it after moving their clock.
  void tick();

  // Prometheus lines: mallornd_rollout_devices{rollout,state}, mallornd_rollout_state{rollout,state},
  // mallornd_rollout_transitions_total{event}, mallornd_rollout_health_pauses_total.
  void render_metrics(std::string& out) const;

 private:
  rollout_engine(index_db& db, engine_options opts);
  core::result<void> load();
  // Journals (one transaction: event row + rollout row) and then applies. Caller holds
  // writer_mutex_ and not mutex_.
  core::result<void> transition(std::int64_t id, rollout_event ev, rollout_state to, const std::string& actor,
                                const std::string& reason);
  transition_facts facts_of(const rollout& r) const;
  // Why the health gate pauses `r` now, if it does (caller holds mutex_, shared or not).
  std::optional<std::string> health_pause_due(const rollout& r) const;
  void pause_if_unhealthy(std::int64_t id);  // caller holds writer_mutex_ and not mutex_
  core::result<void> flush_offers();

  index_db& db_;
  engine_options opts_;
  mutable std::shared_mutex mutex_;
  std::mutex report_mutex_;  // on_report(): one reporter at a time, its index write outside mutex_
  // Transitions, rollouts created, groups: one writer at a time, its index write outside mutex_
  // (check-updates read under mutex_ and must not wait for it). Order: report_mutex_, writer_mutex_, mutex_.
  std::mutex writer_mutex_;
  std::map<std::int64_t, rollout> rollouts_;                           // by id
  std::unordered_map<std::string, std::vector<std::int64_t>> by_model_;  // newest first
  std::map<std::string, group_spec> groups_;
  // Per rollout: each device's progress.
  std::unordered_map<std::int64_t, std::unordered_map<std::string, std::pair<device_progress, std::uint64_t>>> devices_;
  std::mutex offers_mutex_;
  std::vector<std::pair<std::int64_t, std::string>> pending_offers_;
  std::uint64_t health_pauses_ = 0;
  std::map<std::string, std::uint64_t> transitions_;  // by event name, since start (metrics)
  // Device `tz` tags that name no zone: each logged once (bounded), then only counted.
  std::shared_ptr<const time_zone> device_zone(const std::string& tz, const rollout& r);
  mutable std::mutex bad_zones_mutex_;
  std::set<std::string> bad_zones_logged_;
  std::uint64_t bad_zone_fallbacks_ = 0;
};

// check-update's rollout decision for one device (HTTP and MQTT alike): finds the device's
// version in `cat` by sha256 or short id, asks the engine, notes an offer. Without an engine, or
// for a device that follows a channel: kind::no_rollouts (the latest / the channel's version).
decision decide_for_device(rollout_engine* engine, const catalog& cat, const std::string& model,
                           const std::string& sha, const std::string& short_id, const std::string& device,
                           const std::string& channel, const device_tags& tags);

}  // namespace mallorn::server::fleet
