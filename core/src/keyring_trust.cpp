// Keyring trust decisions: which keyring may replace which, and which release key may sign a
// patch. The rules follow TUF's root metadata (docs/security.md).
#include <algorithm>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/keyring.hpp"

namespace mallorn::core {
namespace {

error sig_error(const std::string& what) { return make_error(errc::signature_error, what); }
std::string short_id(const key_id& id) { return to_hex(id).substr(0, 16); }

}  // namespace

result<void> sign_keyring(keyring& k, const ed25519_private_key& key) {
  auto msg = keyring_signed_bytes(k);
  if (!msg) return msg.err();
  auto sig = ed25519_sign(key, *msg);
  if (!sig) return sig.err();
  ed25519_public_key pub{};
  std::copy(key.begin() + 32, key.end(), pub.begin());
  const key_id id = key_id_of(pub);
  std::erase_if(k.signatures, [&](const keyring_signature& s) { return s.keyid == id; });
  if (k.signatures.size() >= keyring_max_signatures) return make_error(errc::invalid_argument, "keyring: too many signatures");
  k.signatures.push_back({id, *sig});
  return {};
}

std::size_t count_valid_signatures(const keyring& k, std::span<const ed25519_public_key> roots) {
  auto msg = keyring_signed_bytes(k);
  if (!msg) return 0;
  std::size_t n = 0;
  for (const auto& root : roots) {
    const key_id id = key_id_of(root);
    for (const auto& s : k.signatures)
      if (s.keyid == id && ed25519_verify(root, *msg, s.sig)) {
        ++n;  // each root counts once however often it appears
        break;
      }
  }
  return n;
}

keyring trust_anchor(const ed25519_public_key& root) {
  keyring k;
  k.version = 0;
  k.root_keys = {root};
  k.root_threshold = 1;
  return k;
}

result<void> verify_keyring_update(const keyring& current, const keyring& candidate, std::uint64_t now) {
  if (candidate.version < current.version)
    return make_error(errc::downgrade_refused, "keyring v" + std::to_string(candidate.version) + " is older than the stored v" +
                                                   std::to_string(current.version) + " (rollback refused)");
  auto cand_bytes = keyring_signed_bytes(candidate);
  if (!cand_bytes) return cand_bytes.err();
  if (candidate.version == current.version && current.version != 0) {
    auto cur_bytes = keyring_signed_bytes(current);
    if (!cur_bytes || *cur_bytes != *cand_bytes)
      return sig_error("keyring v" + std::to_string(candidate.version) + " differs from the stored keyring of the same version");
  }
  if (count_valid_signatures(candidate, current.root_keys) < current.root_threshold)
    return sig_error("keyring v" + std::to_string(candidate.version) + " is not signed by " +
                     std::to_string(current.root_threshold) + " trusted root key(s) of keyring v" + std::to_string(current.version));
  if (count_valid_signatures(candidate, candidate.root_keys) < candidate.root_threshold)
    return sig_error("keyring v" + std::to_string(candidate.version) + " is not signed by " +
                     std::to_string(candidate.root_threshold) + " of its own root key(s) (a new root must co-sign)");
  if (now >= candidate.expires)
    return sig_error("keyring v" + std::to_string(candidate.version) + " expired at " + std::to_string(candidate.expires) +
                     " (now " + std::to_string(now) + ")");
  return {};
}

result<void> check_keyring_fresh(const keyring& k, std::uint64_t now, std::uint64_t grace_seconds) {
  const std::uint64_t limit = k.expires > UINT64_MAX - grace_seconds ? UINT64_MAX : k.expires + grace_seconds;
  if (now < limit) return {};
  return sig_error("keyring v" + std::to_string(k.version) + " expired at " + std::to_string(k.expires) + " (grace " +
                   std::to_string(grace_seconds) + " s, now " + std::to_string(now) +
                   "); updates stop until a fresh keyring is fetched (freeze-attack protection)");
}

result<ed25519_public_key> trusted_release_key(const keyring& k, const std::string& model, std::span<const std::uint8_t> message,
                                               const ed25519_signature& sig, std::uint64_t now) {
  std::string refused;
  for (const auto& key : k.keys) {
    if (!ed25519_verify(key.public_key, message, sig)) continue;
    const key_id id = key_id_of(key.public_key);
    if (k.is_revoked(id)) refused = "key " + short_id(id) + " is revoked";
    else if (!key.covers(model)) refused = "key " + short_id(id) + " may not sign for model " + model;
    else if (now < key.not_before || (key.not_after && now >= key.not_after)) refused = "key " + short_id(id) + " is outside its validity";
    else return key.public_key;
  }
  // A revoked key is normally gone from `keys` (only its id stays listed): name that possibility.
  if (refused.empty())
    return sig_error("the patch is not signed by any release key keyring v" + std::to_string(k.version) + " trusts for model " +
                     model + " (it lists " + std::to_string(k.keys.size()) + " key(s) and " + std::to_string(k.revoked.size()) +
                     " revoked)");
  return sig_error("the patch's signature is refused by keyring v" + std::to_string(k.version) + ": " + refused);
}

}  // namespace mallorn::core
