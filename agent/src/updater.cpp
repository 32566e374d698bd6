#include "mallorn/agent/updater.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mallorn/agent/device_tags.hpp"

#include <cerrno>
#include <ctime>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "mallorn/core/hash.hpp"
#include "download_checkpoint.hpp"
#include "mallorn/agent/keyring_trust.hpp"
#include "mallorn/agent/report_outbox.hpp"
#include "mallorn/agent/server_answer.hpp"
#include "mallorn/core/patch_applier.hpp"

extern char** environ;

namespace mallorn::agent {
namespace fs = std::filesystem;
using nlohmann::json;

const char* outcome_name(cycle_outcome o) {
  switch (o) {
    case cycle_outcome::up_to_date: return "up_to_date";
    case cycle_outcome::pending: return "pending";
    case cycle_outcome::updated: return "updated";
    case cycle_outcome::rolled_back: return "rolled_back";
    case cycle_outcome::failed: return "failed";
  }
  return "failed";
}

updater::updater(const agent_config& cfg, const model_config& model, http_client& client)
    : cfg_(cfg), model_(model), client_(client), slots_(model.dir, model.file) {}

core::result<void> updater::enter(journal& j, update_state s) {
  j.state = s;
  return save_journal(journal_path(), j);
}

void updater::report(const journal& j, const std::string& state, const std::string& error) {
  json body = {{"device_id", cfg_.device_id}, {"model", model_.name},     {"from_version", j.from_version},
               {"to_version", j.to_version},  {"state", state},           {"error", error},
               {"bytes_downloaded", j.bytes_downloaded}};
  body["at"] = static_cast<std::uint64_t>(std::time(nullptr));
  // replace: `error` may quote bytes that are not UTF-8 (a local path, an error text); a strict
  // dump() would throw out of the update cycle (the class router_fuzz found in mallornd).
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  auto r = client_.post_json("/report", text);
  if (r && r->status < 500) return;
  spdlog::warn("{}: report '{}' not delivered ({}); kept for the next contact", model_.name, state,
               r ? "HTTP " + std::to_string(r->status) : r.err().what());
  if (auto q = report_outbox(model_.dir).push(text); !q) spdlog::warn("{}: {}", model_.name, q.err().what());
}

void updater::flush_pending_reports() {
  report_outbox outbox(model_.dir);
  auto pending = outbox.load();
  if (pending.empty()) return;
  for (const auto& line : pending) {
    auto r = client_.post_json("/report", line);
    if (!r || r->status >= 500) return;  // still unreachable: keep them all
  }
  spdlog::info("{}: delivered {} report(s) kept while the server was unreachable", model_.name, pending.size());
  outbox.clear();
}

cycle_result updater::fail(journal& j, const std::string& why) {
  spdlog::error("{}: update {} -> {} failed, {} stays active: {}", model_.name, log_safe(j.from_version),
                log_safe(j.to_version), j.old_slot.empty() ? "the current model" : "slot " + j.old_slot, log_safe(why, 600));
  report(j, "failed", why);
  j.failed_target = j.target_sha256;
  j.error = why;
  remove_download();
  (void)enter(j, update_state::idle);
  return {cycle_outcome::failed, 0, why};
}

void updater::remove_download() {
  std::error_code ec;
  fs::remove(download_path(), ec);
  fs::remove(checkpoint_path(download_path()), ec);
}

cycle_result updater::interrupted(const journal& j, const core::error& e) {
  // The disk or the network, not the update: the journal on disk still names the last state
  // entered, and the next run resumes there. Nothing is marked failed.
  spdlog::warn("{}: update {} -> {} interrupted in state {} ({}); the next run resumes it", model_.name,
               j.from_version, j.to_version, state_name(j.state), e.what());
  report(j, "interrupted", e.what());
  return {cycle_outcome::failed, 0, e.what()};
}

core::result<void> updater::fall_back_to_full(journal& j, const std::string& why) {
  spdlog::warn("{}: {}; falling back to the full model", model_.name, log_safe(why, 600));
  j.use_full = true;
  remove_download();
  return enter(j, update_state::download);
}

cycle_result updater::run_once() {
  auto loaded = load_journal(journal_path());
  if (!loaded) return {cycle_outcome::failed, 0, loaded.err().what()};
  journal j = *loaded;
  if (!slots_.provisioned()) return {cycle_outcome::failed, 0, model_.dir.string() + " has no installed model"};
  slots_.remove_stale_temp_files();
  if (j.state == update_state::idle) remove_download();  // one that could not be deleted at the time
  flush_pending_reports();
  if (auto stop = keyring_gate(j)) return *stop;
  if (j.state != update_state::idle) {
    spdlog::info("{}: resuming the update {} -> {} in state {}", model_.name, j.from_version, j.to_version, state_name(j.state));
    return resume(j);
  }
  return check(j);
}

cycle_result updater::refuse_answer(journal& j, const std::string& why) {
  ++j.bad_server_answers;
  spdlog::error("{}: check-update refused: {}; the current model stays active", model_.name, log_safe(why, 600));
  if (auto r = save_journal(journal_path(), j); !r) spdlog::warn("{}: {}", model_.name, r.err().what());
  return {cycle_outcome::failed, 0, why};
}

cycle_result updater::check(journal& j) {
  auto active = slots_.active();
  if (!active) return {cycle_outcome::failed, 0, active.err().what()};
  auto digest = core::sha256_of_file(slots_.model_path(*active));
  if (!digest) return {cycle_outcome::failed, 0, digest.err().what()};
  const std::string sha = core::to_hex(*digest);
  json req = {{"sha256", sha}, {"model", model_.name}, {"device_id", cfg_.device_id}};
  if (auto tags = collect_tags(cfg_); !tags.empty()) req["tags"] = tags;
  auto reply = client_.post_json("/check-update", req.dump());
  if (!reply) {
    if (reply.err().code != core::errc::io_error) return refuse_answer(j, reply.err().message);
    spdlog::warn("{}: check-update: {}", model_.name, log_safe(reply.err().what()));
    return {cycle_outcome::failed, 0, reply.err().what()};
  }
  if (reply->status == 202 || reply->status == 503)
    return {cycle_outcome::pending, parse_retry_after(reply->header("retry-after")), "server is preparing the update"};
  if (reply->status != 200) {
    const std::string why = "check-update answered HTTP " + std::to_string(reply->status) +
                            (reply->status >= 300 && reply->status < 400 ? " (redirects are not followed)" : "") + ": " +
                            log_safe(reply->body);
    if (reply->status >= 400) {  // the server refuses or is in trouble: an answer, not a lie
      spdlog::warn("{}: {}", model_.name, why);
      return {cycle_outcome::failed, 0, why};
    }
    return refuse_answer(j, why);
  }
  auto answer = parse_check_update(reply->body, cfg_.max_model_size);
  if (!answer) return refuse_answer(j, answer.err().message + " (body: " + log_safe(reply->body) + ")");
  if (!answer->update_available) return {cycle_outcome::up_to_date, 0, {}};
  const update_offer& offer = answer->offer;
  journal next;
  next.installed_version = j.installed_version.empty() ? offer.current_version : j.installed_version;
  next.installed_rank = j.installed_rank;
  next.failed_target = j.failed_target;
  next.bad_server_answers = j.bad_server_answers;
  next.from_sha256 = sha;
  // null: the server does not know this build; only the whole model can replace it.
  next.from_version = offer.current_version.empty() ? "unknown" : offer.current_version;
  next.to_version = offer.target_version;
  next.target_sha256 = offer.target_sha256;
  next.target_rank = offer.target_rank;
  next.full_url = offer.full_url;
  next.full_size = offer.full_size;
  if (!offer.patch_note.empty())
    spdlog::warn("{}: the server's patch is set aside ({}); using the full model", model_.name, offer.patch_note);
  if (!offer.patch_url.empty()) {
    next.patch_url = offer.patch_url;
    next.patch_sha256 = offer.patch_sha256;
    next.patch_size = offer.patch_size;
  } else {
    next.use_full = true;
  }
  if (next.target_sha256 == j.failed_target)
    return {cycle_outcome::up_to_date, 0, "skipping " + next.to_version + ": it failed on this device before"};
  if (!cfg_.allow_downgrade && j.installed_rank && next.target_rank && next.target_rank <= j.installed_rank)
    return {cycle_outcome::up_to_date, 0, "refusing downgrade to " + next.to_version};
  next.old_slot = *active;
  next.new_slot = slot_store::other(*active);
  remove_download();
  spdlog::info("{}: update {} -> {} ({})", model_.name, log_safe(next.from_version), log_safe(next.to_version),
               next.use_full ? "full download of " + std::to_string(next.full_size) + " bytes"
                             : "patch of " + std::to_string(next.patch_size) + " bytes");
  if (auto r = enter(next, update_state::download); !r) return interrupted(next, r.err());
  j = next;
  return resume(j);
}

cycle_result updater::resume(journal& j) {
  // Every transition journals the next state first; a failed journal write leaves the previous
  // state on disk, so the step is simply redone by the next run.
  auto go = [&](update_state next) -> std::optional<cycle_result> {
    if (auto s = enter(j, next); !s) return interrupted(j, s.err());
    return std::nullopt;
  };
  for (;;) {
    switch (j.state) {
      case update_state::idle: return {cycle_outcome::up_to_date, 0, {}};
      case update_state::download: {
        report(j, "downloading");
        auto r = download(j);
        // The network or the disk, not the content: keep the journal and the partial file.
        if (!r && r.err().code == core::errc::io_error) return interrupted(j, r.err());
        if (!r && r.err().code == core::errc::invalid_argument) ++j.bad_server_answers;  // saved by what follows
        if (!r) {
          if (j.use_full) return fail(j, r.err().what());
          if (auto s = fall_back_to_full(j, "patch download failed: " + r.err().what()); !s) return interrupted(j, s.err());
          continue;
        }
        if (auto stop = go(update_state::apply)) return *stop;
        break;
      }
      case update_state::apply: {
        report(j, "applying");
        auto r = apply(j);
        if (!r && r.err().code == core::errc::io_error) return interrupted(j, r.err());
        if (!r) {
          // A bad signature is tampering, not an accident: do not route around it.
          if (j.use_full || r.err().code == core::errc::signature_error || r.err().code == core::errc::downgrade_refused)
            return fail(j, r.err().what());
          if (auto s = fall_back_to_full(j, "the patch did not apply: " + r.err().what()); !s) return interrupted(j, s.err());
          continue;
        }
        if (auto stop = go(update_state::verify)) return *stop;
        break;
      }
      case update_state::verify: {
        auto digest = core::sha256_of_file(slots_.model_path(j.new_slot));
        if (!digest) return interrupted(j, digest.err());
        if (core::to_hex(*digest) != j.target_sha256)
          return fail(j, "the new model's SHA-256 does not match the target " + j.target_sha256);
        if (auto stop = go(update_state::swap)) return *stop;
        break;
      }
      case update_state::swap: {
        report(j, "swapping");
        if (auto r = slots_.activate(j.new_slot); !r) return interrupted(j, r.err());
        if (auto stop = go(update_state::health_check)) return *stop;
        break;
      }
      case update_state::health_check: {
        report(j, "health_check");
        auto r = health_check();
        if (!r) {
          j.error = r.err().message;
          spdlog::error("{}: health check of {} failed: {}; rolling back", model_.name, j.to_version, j.error);
          if (auto stop = go(update_state::rollback)) return *stop;
          break;
        }
        if (auto stop = go(update_state::commit)) return *stop;
        break;
      }
      case update_state::commit: {
        j.installed_version = j.to_version;
        j.installed_rank = j.target_rank;
        j.error.clear();
        remove_download();
        if (auto stop = go(update_state::idle)) return *stop;
        report(j, "committed");
        spdlog::info("{}: committed {} (slot {}, {} bytes downloaded)", model_.name, j.to_version, j.new_slot, j.bytes_downloaded);
        return {cycle_outcome::updated, 0, j.to_version};
      }
      case update_state::rollback: {
        if (auto r = slots_.activate(j.old_slot); !r) return interrupted(j, r.err());
        j.failed_target = j.target_sha256;
        const std::string why = j.error;
        if (auto stop = go(update_state::idle)) return *stop;
        report(j, "rolled_back", why);
        spdlog::warn("{}: rolled back to {} (slot {}): {}", model_.name, j.from_version, j.old_slot, why);
        return {cycle_outcome::rolled_back, 0, why};
      }
    }
  }
}

core::result<void> updater::download(journal& j) {
  const bool full = j.use_full;
  const std::string url = full ? j.full_url : j.patch_url;
  const std::string want_sha = full ? j.target_sha256 : j.patch_sha256;
  const std::uint64_t want_size = full ? j.full_size : j.patch_size;
  const auto part = download_path();
  // A journal written before sizes were required, or a max_model_size lowered since.
  if (want_size == 0) return core::make_error(core::errc::invalid_argument, "bad server answer: no size announced for " + url);
  if (want_size > cfg_.max_model_size)
    return core::make_error(core::errc::invalid_argument, "bad server answer: " + url + " is " + std::to_string(want_size) +
                                                              " bytes, over max_model_size " +
                                                              std::to_string(cfg_.max_model_size));
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::error_code ec;
    std::uint64_t offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
    if (offset > want_size) {
      remove_download();
      offset = 0;
    }
    if (const std::uint64_t trusted = trusted_prefix(part, offset); trusted < offset) {
      spdlog::info("{}: the device restarted since {} was written; keeping its {} synced bytes of {}", model_.name,
                   part.filename().string(), trusted, offset);
      fs::resize_file(part, trusted, ec);
      if (ec) return core::make_error(core::errc::io_error, "truncating " + part.string() + ": " + ec.message());
      offset = trusted;
    }
    // Record this boot, so that a kill (not a power cut) later in it keeps every written byte.
    if (auto c = load_checkpoint(part); !c || c->boot_id != current_boot_id())
      if (auto saved = save_checkpoint(part, offset); !saved) return saved.err();
    if (offset < want_size) {
      int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return core::make_error(core::errc::io_error, "open " + part.string() + ": " + std::strerror(errno));
      std::map<std::string, std::string> headers;
      if (offset > 0) {
        headers["Range"] = "bytes=" + std::to_string(offset) + "-";
        headers["If-Range"] = "\"" + want_sha + "\"";  // a changed file is sent whole
      }
      bool positioned = false;
      std::uint64_t since_sync = 0, end = offset;
      auto reply = client_.get(url, headers, [&](const http_reply& head, std::span<const std::uint8_t> bytes) -> core::result<void> {
        if (!positioned) {
          // Before the first byte is written: the answer must be the announced file, from here.
          MALLORN_TRY(check_download_head(head, offset, want_size));
          if (head.status == 200 && offset > 0) {  // Range not honoured, or the file changed: start over
            offset = end = 0;
            MALLORN_TRY(save_checkpoint(part, 0));
          }
          if (::ftruncate(fd, static_cast<off_t>(offset)) != 0 || ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0)
            return core::make_error(core::errc::io_error, "cannot position " + part.string() + ": " + std::strerror(errno));
          positioned = true;
        }
        // Never a byte past the announced size: what fits is kept (it may be the whole file), the
        // rest is a lie that ends the transfer.
        const bool overrun = bytes.size() > want_size - end;
        if (overrun) bytes = bytes.first(static_cast<std::size_t>(want_size - end));
        for (std::size_t done = 0; done < bytes.size();) {
          ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
          if (n < 0) return core::make_error(core::errc::io_error, "writing " + part.string() + ": " + std::strerror(errno));
          done += static_cast<std::size_t>(n);
        }
        j.bytes_downloaded += bytes.size();
        end += bytes.size();
        since_sync += bytes.size();
        if (since_sync >= (1u << 20)) {  // bound what a power cut can take back
          if (::fdatasync(fd) != 0)
            return core::make_error(core::errc::io_error, "fdatasync " + part.string() + ": " + std::strerror(errno));
          MALLORN_TRY(save_checkpoint(part, end));
          since_sync = 0;
        }
        if (overrun)
          return core::make_error(core::errc::invalid_argument, "bad server answer: " + url + " sent more than the announced " +
                                                                    std::to_string(want_size) + " bytes");
        return {};
      });
      const int sync_rc = ::fsync(fd);
      const int sync_errno = errno;
      ::close(fd);
      if (sync_rc == 0 && since_sync > 0)
        if (auto c = save_checkpoint(part, end); !c) return c.err();
      if (!reply) return reply.err();
      if (reply->status == 416) {
        remove_download();
        continue;
      }
      if (reply->status == 404 || reply->status == 410)  // evicted or withdrawn: not worth retrying
        return core::make_error(core::errc::invalid_patch, "GET " + url + " answered " + std::to_string(reply->status));
      if (reply->status >= 300 && reply->status < 400)
        return core::make_error(core::errc::invalid_argument, "bad server answer: GET " + url + " answered " +
                                                                  std::to_string(reply->status) + " (redirects are not followed)");
      if (reply->status != 200 && reply->status != 206)
        return core::make_error(core::errc::io_error, "GET " + url + " answered " + std::to_string(reply->status));
      if (sync_rc != 0) return core::make_error(core::errc::io_error, "fsync " + part.string() + ": " + std::strerror(sync_errno));
    }
    auto digest = core::sha256_of_file(part);
    if (digest && core::to_hex(*digest) == want_sha) return {};
    spdlog::warn("{}: downloaded {} does not match its SHA-256; downloading it again", model_.name, url);
    remove_download();
  }
  return core::make_error(full ? core::errc::target_hash_mismatch : core::errc::invalid_patch,
                          "the download of " + url + " does not match its SHA-256");
}

core::result<void> updater::apply(journal& j) {
  if (slots_.active().ok() && *slots_.active() != j.old_slot)
    return core::make_error(core::errc::invalid_argument, "the active slot changed under the update");
  const auto out = slots_.model_path(j.new_slot);
  // The inactive slot is scratch: empty it first, so an earlier release or the remains of an
  // interrupted apply never take the space the new model needs.
  MALLORN_TRY(slots_.clear(j.new_slot));
  std::error_code ec;
  if (j.use_full) {
    // Already verified against the target SHA-256; rename publishes it in the slot atomically.
    fs::rename(download_path(), out, ec);
    if (ec) return core::make_error(core::errc::io_error, "moving the download into slot " + j.new_slot + ": " + ec.message());
    fs::remove(checkpoint_path(download_path()), ec);
    return fsync_directory(out.parent_path());
  }
  core::apply_options opts;
  opts.public_key = cfg_.public_key;
  if (!cfg_.allow_downgrade && j.installed_rank) opts.min_target_version = j.installed_rank + 1;
  auto header = core::read_patch_header(download_path());
  if (!header) return header.err();
  if (cfg_.keyring.enabled()) {  // the key comes from the keyring in force now, not at download time
    auto key = keyring_trust(cfg_.keyring).key_for(*header, model_.name, keyring_clock_now());
    if (!key) return key.err();
    opts.public_key = *key;
  }
  if (core::to_hex(header->target_sha256) != j.target_sha256)
    return core::make_error(core::errc::invalid_patch, "the patch produces " + core::to_hex(header->target_sha256) +
                                                           ", not the announced target " + j.target_sha256);
  auto applied = core::apply_patch_file(slots_.model_path(j.old_slot), download_path(), out, opts);
  if (!applied) return applied.err();
  return {};
}

core::result<void> updater::health_check() {
  if (model_.health_check.empty()) return {};
  std::vector<std::string> args = model_.health_check;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
  env_storage.push_back("MALLORN_MODEL=" + slots_.current_model().string());
  env_storage.push_back("MALLORN_MODEL_NAME=" + model_.name);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()) != 0)
    return core::make_error(core::errc::io_error, "cannot run health check " + args[0]);
  const auto deadline = std::chrono::steady_clock::now() + model_.health_timeout;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return core::make_error(core::errc::io_error, "health check timed out after " +
                                                        std::to_string(model_.health_timeout.count()) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return core::make_error(core::errc::io_error, "health check exited with status " +
                                                      std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  return {};
}

}  // namespace mallorn::agent
