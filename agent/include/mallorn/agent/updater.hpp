// One model's update state machine (see docs/agent.md for the diagram):
//   idle -> download -> apply -> verify -> swap -> health_check -> commit -> idle
//                         \ (patch fails: full download) /            \-> rollback -> idle
// Each state is journaled before it is entered; run_once() first resumes whatever the journal
// says was in progress, so a kill or power cut at any instant ends with `current` naming either
// the old model or the new one, and the next run converges.
#pragma once
#include <chrono>
#include <optional>
#include <string>

#include "mallorn/agent/agent_config.hpp"
#include "mallorn/agent/http_client.hpp"
#include "mallorn/agent/journal.hpp"
#include "mallorn/agent/slot_store.hpp"

namespace mallorn::agent {

enum class cycle_outcome { up_to_date, pending, updated, rolled_back, failed };
const char* outcome_name(cycle_outcome o);

struct cycle_result {
  cycle_outcome outcome = cycle_outcome::up_to_date;
  unsigned retry_after = 0;  // pending: seconds the server asked us to wait
  std::string detail;
};

class updater {
 public:
  updater(const agent_config& cfg, const model_config& model, http_client& client);
  // Resumes an interrupted update, else checks for a new one and installs it.
  cycle_result run_once();
  core::result<journal> current_journal() const { return load_journal(journal_path()); }
  const slot_store& slots() const { return slots_; }

 private:
  std::filesystem::path journal_path() const { return model_.dir / "journal.json"; }
  std::filesystem::path download_path() const { return model_.dir / "download.part"; }
  void remove_download();  // the partial file and its sync checkpoint
  core::result<void> enter(journal& j, update_state s);
  cycle_result check(journal& j);
  cycle_result resume(journal& j);
  core::result<void> download(journal& j);
  core::result<void> apply(journal& j);
  core::result<void> health_check();
  // Reports a transition; when the server cannot take it, it waits in the outbox.
  void report(const journal& j, const std::string& state, const std::string& error = {});
  void flush_pending_reports();
  cycle_result fail(journal& j, const std::string& why);
  // Local I/O trouble (disk full, EIO, network): the journal keeps the last state entered.
  cycle_result interrupted(const journal& j, const core::error& e);
  // Keyring refresh and expiry check (keyring_gate.cpp); a result stops this cycle.
  std::optional<cycle_result> keyring_gate(journal& j);
  // Journals a switch from the patch to the whole model (state download, use_full).
  core::result<void> fall_back_to_full(journal& j, const std::string& why);

  const agent_config& cfg_;
  const model_config& model_;
  http_client& client_;
  slot_store slots_;
};

}  // namespace mallorn::agent
