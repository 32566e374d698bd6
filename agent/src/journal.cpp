#include "mallorn/agent/journal.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "mallorn/core/io.hpp"

namespace mallorn::agent {

namespace {
constexpr update_state all_states[] = {update_state::idle, update_state::download, update_state::apply,
                                       update_state::verify, update_state::swap, update_state::health_check,
                                       update_state::commit, update_state::rollback};
}

const char* state_name(update_state s) {
  switch (s) {
    case update_state::idle: return "idle";
    case update_state::download: return "download";
    case update_state::apply: return "apply";
    case update_state::verify: return "verify";
    case update_state::swap: return "swap";
    case update_state::health_check: return "health_check";
    case update_state::commit: return "commit";
    case update_state::rollback: return "rollback";
  }
  return "idle";
}

core::result<journal> load_journal(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return journal{};
  std::ifstream in(file);
  auto d = nlohmann::json::parse(in, nullptr, false);
  if (d.is_discarded() || !d.is_object())
    return core::make_error(core::errc::io_error, file.string() + ": unreadable journal");
  journal j;
  const std::string state = d.value("state", "idle");
  for (auto s : all_states)
    if (state == state_name(s)) j.state = s;
  j.from_version = d.value("from_version", "");
  j.to_version = d.value("to_version", "");
  j.from_sha256 = d.value("from_sha256", "");
  j.target_sha256 = d.value("target_sha256", "");
  j.target_rank = d.value("target_rank", std::uint64_t{0});
  j.patch_url = d.value("patch_url", "");
  j.patch_sha256 = d.value("patch_sha256", "");
  j.full_url = d.value("full_url", "");
  j.patch_size = d.value("patch_size", std::uint64_t{0});
  j.full_size = d.value("full_size", std::uint64_t{0});
  j.use_full = d.value("use_full", false);
  j.old_slot = d.value("old_slot", "");
  j.new_slot = d.value("new_slot", "");
  j.bytes_downloaded = d.value("bytes_downloaded", std::uint64_t{0});
  j.error = d.value("error", "");
  j.installed_version = d.value("installed_version", "");
  j.installed_rank = d.value("installed_rank", std::uint64_t{0});
  j.failed_target = d.value("failed_target", "");
  j.bad_server_answers = d.value("bad_server_answers", std::uint64_t{0});
  return j;
}

core::result<void> save_journal(const std::filesystem::path& file, const journal& j) {
  nlohmann::json d = {{"state", state_name(j.state)},       {"from_version", j.from_version},
                      {"to_version", j.to_version},         {"from_sha256", j.from_sha256},
                      {"target_sha256", j.target_sha256},   {"target_rank", j.target_rank},
                      {"patch_url", j.patch_url},           {"patch_sha256", j.patch_sha256},
                      {"full_url", j.full_url},             {"patch_size", j.patch_size},
                      {"full_size", j.full_size},           {"use_full", j.use_full},
                      {"old_slot", j.old_slot},             {"new_slot", j.new_slot},
                      {"bytes_downloaded", j.bytes_downloaded}, {"error", j.error},
                      {"installed_version", j.installed_version}, {"installed_rank", j.installed_rank},
                      {"failed_target", j.failed_target}, {"bad_server_answers", j.bad_server_answers}};
  const std::string text = d.dump(2) + "\n";
  return core::write_file_atomic(file, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

}  // namespace mallorn::agent
