#include "mallorn/agent/keyring_trust.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "mallorn/agent/slot_store.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/key_file.hpp"

namespace mallorn::agent {
namespace {

core::error bad(const std::string& what) { return core::make_error(core::errc::invalid_argument, what); }

}  // namespace

core::result<keyring_options> load_keyring_options(const nlohmann::json& doc) {
  keyring_options o;
  try {
    if (doc.contains("root_key")) {
      auto key = core::load_public_key_file(doc["root_key"].get<std::string>());
      if (!key) return key.err().with("root_key");
      o.root_key = *key;
    }
    if (doc.contains("keyring_pinned")) o.pinned = doc["keyring_pinned"].get<std::string>();
    if (doc.contains("keyring_file")) o.file = doc["keyring_file"].get<std::string>();
    if (doc.contains("keyring_grace")) {
      const auto& g = doc["keyring_grace"];
      if (!g.is_number_integer() || g.get<std::int64_t>() < 0) return bad("keyring_grace: expected whole seconds >= 0");
      o.grace_seconds = g.get<std::uint64_t>();
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(std::string("keyring settings: ") + e.what());
  }
  if (o.enabled() && o.file.empty()) return bad("root_key / keyring_pinned need keyring_file (where the accepted keyring is kept)");
  if (!o.enabled() && !o.file.empty()) return bad("keyring_file needs root_key or keyring_pinned");
  return o;
}

std::uint64_t keyring_clock_now() {
  // Tests move the agent's clock to reach expiry without waiting; never set in production units.
  if (const char* fake = std::getenv("MALLORN_AGENT_NOW"); fake && *fake) return std::strtoull(fake, nullptr, 10);
  return static_cast<std::uint64_t>(std::time(nullptr));
}

core::result<core::keyring> keyring_trust::current() const {
  std::error_code ec;
  if (std::filesystem::exists(opts_.file, ec)) {
    auto bytes = core::read_file(opts_.file);
    if (!bytes) return bytes.err();
    auto k = core::decode_keyring(*bytes);
    if (!k) return k.err().with(opts_.file.string());
    return k;
  }
  if (opts_.pinned) {
    auto bytes = core::read_file(*opts_.pinned);
    if (!bytes) return bytes.err();
    auto k = core::decode_keyring(*bytes);
    if (!k) return k.err().with(opts_.pinned->string());
    return k;
  }
  return core::trust_anchor(*opts_.root_key);
}

core::result<std::uint64_t> keyring_trust::accept(std::span<const std::uint8_t> bytes, std::uint64_t now) const {
  auto cur = current();
  if (!cur) return cur.err();
  auto cand = core::decode_keyring(bytes);
  if (!cand) return cand.err();
  MALLORN_TRY(core::verify_keyring_update(*cur, *cand, now));
  if (cand->version == cur->version && cur->version != 0) return cur->version;  // the same one again
  auto bin = core::encode_keyring_binary(*cand);
  if (!bin) return bin.err();
  // Temp file, fsync, rename, fsync dir: a power cut leaves the old keyring or the new one.
  MALLORN_TRY(core::write_file_atomic(opts_.file, *bin));
  MALLORN_TRY(fsync_directory(opts_.file.parent_path().empty() ? "." : opts_.file.parent_path()));
  spdlog::info("keyring v{} accepted (was v{}): {} release key(s), {} revoked, expires {}", cand->version, cur->version,
               cand->keys.size(), cand->revoked.size(), cand->expires);
  return cand->version;
}

core::result<std::uint64_t> keyring_trust::refresh(http_client& client, std::uint64_t now) const {
  std::vector<std::uint8_t> body;
  bool too_big = false;
  auto reply = client.get("/keyring?format=binary", {}, [&](unsigned, std::span<const std::uint8_t> bytes) -> core::result<void> {
    if (body.size() + bytes.size() > core::max_keyring_size) {
      too_big = true;
      return core::make_error(core::errc::invalid_argument, "GET /keyring: larger than the keyring limit");
    }
    body.insert(body.end(), bytes.begin(), bytes.end());
    return {};
  });
  if (too_big) return core::make_error(core::errc::invalid_argument, "GET /keyring: larger than the keyring limit");
  if (!reply) return reply.err();
  if (reply->status != 200)
    return core::make_error(core::errc::io_error, "GET /keyring answered " + std::to_string(reply->status));
  return accept(body, now);
}

core::result<void> keyring_trust::check_fresh(std::uint64_t now) const {
  auto cur = current();
  if (!cur) return cur.err();
  if (cur->version == 0)
    return core::make_error(core::errc::signature_error, "no keyring yet: only the root key is provisioned, so no release key is trusted");
  return core::check_keyring_fresh(*cur, now, opts_.grace_seconds);
}

core::result<core::ed25519_public_key> keyring_trust::key_for(const core::patch_header& header, const std::string& model,
                                                              std::uint64_t now) const {
  if (!header.is_signed() || !header.signature)
    return core::make_error(core::errc::signature_error, "patch is not signed but a keyring is configured");
  auto cur = current();
  if (!cur) return cur.err();
  MALLORN_TRY(core::check_keyring_fresh(*cur, now, opts_.grace_seconds));
  return core::trusted_release_key(*cur, model, core::signed_message(header), *header.signature, now);
}

}  // namespace mallorn::agent
