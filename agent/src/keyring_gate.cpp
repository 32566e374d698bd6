// The updater's keyring step (updater::keyring_gate): before an update is checked for or carried
// on, fetch the newest keyring and stop if the one in force has expired (freeze-attack protection).
#include <spdlog/spdlog.h>

#include "mallorn/agent/keyring_trust.hpp"
#include "mallorn/agent/updater.hpp"

namespace mallorn::agent {

std::optional<cycle_result> updater::keyring_gate(journal& j) {
  // Past apply the new model is already verified: a stale keyring must not block a swap or a rollback.
  if (!cfg_.keyring.enabled() ||
      (j.state != update_state::idle && j.state != update_state::download && j.state != update_state::apply))
    return std::nullopt;
  keyring_trust trust(cfg_.keyring);
  const std::uint64_t now = keyring_clock_now();
  if (auto r = trust.refresh(client_, now); !r) {
    // Unreachable or no keyring served: the stored one stays in force. Anything else was refused.
    if (r.err().code == core::errc::io_error)
      spdlog::warn("{}: keyring not refreshed: {}", model_.name, r.err().what());
    else
      spdlog::error("{}: keyring from {} refused, the stored one stays in force: {}", model_.name, cfg_.server, r.err().what());
  }
  if (auto fresh = trust.check_fresh(now); !fresh) {
    const std::string why = fresh.err().what();
    spdlog::error("{}: updates stopped: {}", model_.name, why);
    report(j, "failed", why);
    return cycle_result{cycle_outcome::failed, 0, why};
  }
  return std::nullopt;
}

}  // namespace mallorn::agent
