// The rollout state machine as one explicit table: (state, event) -> state, with a guard. The
// engine looks a transition up here, journals it, and only then applies it.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace mallorn::server::fleet {

enum class rollout_state { scheduled, running, paused, completed, aborted };
enum class rollout_event {
  start,          // scheduled -> running when start_at has come
  pause,          // operator
  health_pause,   // engine: failure rate crossed with enough reports
  resume,         // operator
  advance,        // operator: next stage now
  auto_advance,   // engine: stage_min_seconds passed, enough healthy reports
  abort,          // operator
  pause_timeout,  // engine: paused longer than pause_timeout_seconds
};

// What the guards look at.
struct transition_facts {
  bool start_time_reached = false;
  bool has_next_stage = false;  // false: the current stage is the last one
  bool health_gate_open = false;  // enough reports, failure rate below the threshold, min time passed
  bool health_gate_crossed = false;  // failure rate at/over the threshold with >= min_reports
  bool pause_timed_out = false;
};

// nullopt: the event is not allowed in this state (or its guard is false).
std::optional<rollout_state> next_state(rollout_state from, rollout_event ev, const transition_facts& facts);
// Why an event was refused, for the API's 409 message.
std::string refusal(rollout_state from, rollout_event ev, const transition_facts& facts);

std::string_view state_name(rollout_state s);
std::string_view event_name(rollout_event e);
std::optional<rollout_state> parse_state(std::string_view s);
inline bool is_terminal(rollout_state s) { return s == rollout_state::completed || s == rollout_state::aborted; }

}  // namespace mallorn::server::fleet
