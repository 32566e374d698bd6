// The update journal: the state machine's state and everything needed to resume it, written
// durably (temp file, fsync, rename, directory fsync) *before* each state is entered, so a power
// cut at any instant resumes or rolls back on the next start.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::agent {

enum class update_state { idle, download, apply, verify, swap, health_check, commit, rollback };
const char* state_name(update_state s);

struct journal {
  update_state state = update_state::idle;
  // The update in progress.
  std::string from_version, to_version, from_sha256, target_sha256;
  std::uint64_t target_rank = 0;
  std::string patch_url, patch_sha256, full_url;
  std::uint64_t patch_size = 0, full_size = 0;
  bool use_full = false;  // the patch is absent or failed: download the whole model
  std::string old_slot, new_slot;
  std::uint64_t bytes_downloaded = 0;
  std::string error;
  // What is installed, and the last target that failed (not retried until the server offers
  // another one).
  std::string installed_version;
  std::uint64_t installed_rank = 0;
  std::string failed_target;
  // Server answers refused as malformed or dishonest (bad JSON, a missing size, a body longer
  // than announced, a wrong Content-Range, a redirect): a count for `status`, never reset.
  std::uint64_t bad_server_answers = 0;
};

// A missing file reads as an idle journal.
core::result<journal> load_journal(const std::filesystem::path& file);
core::result<void> save_journal(const std::filesystem::path& file, const journal& j);

}  // namespace mallorn::agent
