// The rollout transition table. Rows are tried in order; the first whose state and event match
// and whose guard holds decides.
#include "mallorn/server/fleet/rollout_state.hpp"

#include <array>

namespace mallorn::server::fleet {
namespace {

using S = rollout_state;
using E = rollout_event;
using guard = bool (*)(const transition_facts&);

struct row {
  S from;
  E event;
  S to;
  guard when;
  const char* refused;  // why, when the guard is false
};

bool always(const transition_facts&) { return true; }
bool started(const transition_facts& f) { return f.start_time_reached; }
bool more_stages(const transition_facts& f) { return f.has_next_stage; }
bool last_stage(const transition_facts& f) { return !f.has_next_stage; }
bool gate_open_more(const transition_facts& f) { return f.health_gate_open && f.has_next_stage; }
bool gate_open_last(const transition_facts& f) { return f.health_gate_open && !f.has_next_stage; }
bool gate_crossed(const transition_facts& f) { return f.health_gate_crossed; }
bool timed_out(const transition_facts& f) { return f.pause_timed_out; }

constexpr std::array<row, 12> table{{
    {S::scheduled, E::start, S::running, started, "its start time has not come"},
    {S::scheduled, E::abort, S::aborted, always, ""},
    {S::running, E::pause, S::paused, always, ""},
    {S::running, E::health_pause, S::paused, gate_crossed, "the failure rate is below the threshold"},
    {S::running, E::advance, S::running, more_stages, ""},
    {S::running, E::advance, S::completed, last_stage, ""},
    {S::running, E::auto_advance, S::running, gate_open_more, "the health gate is not open"},
    {S::running, E::auto_advance, S::completed, gate_open_last, "the health gate is not open"},
    {S::running, E::abort, S::aborted, always, ""},
    {S::paused, E::resume, S::running, always, ""},
    {S::paused, E::abort, S::aborted, always, ""},
    {S::paused, E::pause_timeout, S::aborted, timed_out, "the pause has not timed out"},
}};

}  // namespace

std::optional<rollout_state> next_state(rollout_state from, rollout_event ev, const transition_facts& facts) {
  for (const auto& r : table)
    if (r.from == from && r.event == ev && r.when(facts)) return r.to;
  return std::nullopt;
}

std::string refusal(rollout_state from, rollout_event ev, const transition_facts& facts) {
  for (const auto& r : table)
    if (r.from == from && r.event == ev && !r.when(facts))
      return std::string("cannot ") + std::string(event_name(ev)) + ": " + r.refused;
  return "cannot " + std::string(event_name(ev)) + " a rollout that is " + std::string(state_name(from));
}

std::string_view state_name(rollout_state s) {
  switch (s) {
    case S::scheduled: return "scheduled";
    case S::running: return "running";
    case S::paused: return "paused";
    case S::completed: return "completed";
    case S::aborted: return "aborted";
  }
  return "?";
}

std::string_view event_name(rollout_event e) {
  switch (e) {
    case E::start: return "start";
    case E::pause: return "pause";
    case E::health_pause: return "health_pause";
    case E::resume: return "resume";
    case E::advance: return "advance";
    case E::auto_advance: return "auto_advance";
    case E::abort: return "abort";
    case E::pause_timeout: return "pause_timeout";
  }
  return "?";
}

std::optional<rollout_state> parse_state(std::string_view s) {
  for (auto st : {S::scheduled, S::running, S::paused, S::completed, S::aborted})
    if (state_name(st) == s) return st;
  return std::nullopt;
}

}  // namespace mallorn::server::fleet
