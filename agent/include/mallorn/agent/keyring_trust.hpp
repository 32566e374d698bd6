// The agent's side of rotating release keys (docs/security.md): a provisioned root key (or a
// pinned first keyring), the newest accepted keyring kept on disk, and the patch-signature check
// against it. Without root_key/keyring_pinned the agent keeps using the single `public_key`.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "mallorn/agent/http_client.hpp"
#include "mallorn/core/error.hpp"
#include "mallorn/core/keyring.hpp"
#include "mallorn/core/patch_header.hpp"

namespace mallorn::agent {

struct keyring_options {
  std::optional<core::ed25519_public_key> root_key;   // "root_key": 32-byte root public key file
  std::optional<std::filesystem::path> pinned;        // "keyring_pinned": a first keyring trusted as is
  std::filesystem::path file;                         // "keyring_file": where the accepted keyring is kept
  std::uint64_t grace_seconds = 0;                    // "keyring_grace": how long past expiry updates go on
  bool enabled() const { return root_key.has_value() || pinned.has_value(); }
};

// Reads root_key / keyring_pinned / keyring_file / keyring_grace from the agent config object.
core::result<keyring_options> load_keyring_options(const nlohmann::json& doc);

// Unix seconds now; tests override the agent's clock with MALLORN_AGENT_NOW (see keyring_trust.cpp).
std::uint64_t keyring_clock_now();

class keyring_trust {
 public:
  explicit keyring_trust(const keyring_options& opts) : opts_(opts) {}

  // The keyring in force: the stored one, else the pinned one, else the bare root (version 0).
  core::result<core::keyring> current() const;
  // GET /keyring?format=binary; a newer keyring that verifies against current() is stored
  // atomically. Returns the version now in force. A refused keyring changes nothing.
  core::result<std::uint64_t> refresh(http_client& client, std::uint64_t now) const;
  // Accepts a candidate keyring (either encoding) and stores it; the same rules as refresh().
  core::result<std::uint64_t> accept(std::span<const std::uint8_t> bytes, std::uint64_t now) const;
  // Updates may proceed only under a keyring that is not expired beyond the grace period.
  core::result<void> check_fresh(std::uint64_t now) const;
  // The release key the current keyring trusts for `model` that signed `header`.
  core::result<core::ed25519_public_key> key_for(const core::patch_header& header, const std::string& model,
                                                 std::uint64_t now) const;

 private:
  const keyring_options& opts_;
};

}  // namespace mallorn::agent
