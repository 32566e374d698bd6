// Release-key keyrings (docs/security.md): an offline root key signs a versioned list of the
// release public keys (role, models, validity), the revoked keys and an expiry.
//
// One document, two encodings. The compact binary form (layout below and in docs/security.md) is
// what every signature covers; the JSON form (TUF-style {"signed": {...}, "signatures": [...]})
// is a readable view that is re-encoded to binary for verification, so a device that only
// understands the binary form (firmware/ mallorn_lite) checks exactly the same signatures.
//
// Binary, little-endian. Signed part:
//   0  "MLKR"   4  u8 format (1)   5  u8 root_threshold   6  u8 root_count   7  u8 key_count
//   8  u8 revoked_count   9..11 zero   12 u32 signed_size (bytes of the signed part)
//   16 u64 version   24 u64 issued   32 u64 expires   (unix seconds)
//   40 root_count x 32-byte root public keys
//      key_count x { 32-byte public key, u64 not_before, u64 not_after (0 = open), u8 role (1 = release),
//                    u8 model_count, model_count x { u8 length 1..64, name bytes } }   ("*" = every model)
//      revoked_count x 32-byte key ids
// Then: u8 signature_count, signature_count x { 32-byte key id, 64-byte Ed25519 signature }.
// A key id is the SHA-256 of the 32-byte public key.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::core {

using key_id = std::array<std::uint8_t, 32>;
key_id key_id_of(const ed25519_public_key& key);

// Limits every parser enforces (the binary form stays below max_keyring_size).
inline constexpr std::size_t keyring_max_roots = 4;
inline constexpr std::size_t keyring_max_keys = 16;
inline constexpr std::size_t keyring_max_models = 8;
inline constexpr std::size_t keyring_max_model_name = 64;
inline constexpr std::size_t keyring_max_revoked = 64;
inline constexpr std::size_t keyring_max_signatures = 8;
inline constexpr std::size_t max_keyring_size = 16384;
inline constexpr std::uint8_t keyring_format = 1;

enum class key_role : std::uint8_t { release = 1 };

struct keyring_key {
  ed25519_public_key public_key{};
  key_role role = key_role::release;
  std::vector<std::string> models{"*"};  // model names this key may sign for; "*" = all
  std::uint64_t not_before = 0;          // unix seconds; 0 = no lower bound
  std::uint64_t not_after = 0;           // unix seconds; 0 = no upper bound
  bool covers(const std::string& model) const;
};

struct keyring_signature {
  key_id keyid{};
  ed25519_signature sig{};
};

struct keyring {
  std::uint64_t version = 1;
  std::uint64_t issued = 0;
  std::uint64_t expires = 0;
  std::uint8_t root_threshold = 1;
  std::vector<ed25519_public_key> root_keys;  // who may sign the next version
  std::vector<keyring_key> keys;
  std::vector<key_id> revoked;
  std::vector<keyring_signature> signatures;

  bool is_revoked(const key_id& id) const;
  const keyring_key* find_key(const key_id& id) const;
};

// The bytes every signature covers. invalid_argument when a limit is exceeded.
result<std::vector<std::uint8_t>> keyring_signed_bytes(const keyring& k);
// Signed part + signature block.
result<std::vector<std::uint8_t>> encode_keyring_binary(const keyring& k);
// Strict: limits, reserved bytes, exact length; invalid_argument on anything malformed. Does not
// check signatures (see verify_keyring_update).
result<keyring> decode_keyring_binary(std::span<const std::uint8_t> bytes);

// The JSON view. Unknown fields are refused: nothing outside the signed bytes can ride along.
std::string encode_keyring_json(const keyring& k);
result<keyring> decode_keyring_json(std::string_view text);
// Either form, told apart by the first byte ("MLKR" or '{').
result<keyring> decode_keyring(std::span<const std::uint8_t> bytes);

// Adds (or replaces) the signature of `key` over the signed part.
result<void> sign_keyring(keyring& k, const ed25519_private_key& key);
// Distinct keys among `roots` with a valid signature on k.
std::size_t count_valid_signatures(const keyring& k, std::span<const ed25519_public_key> roots);

// What a device trusts before its first keyring: just the provisioned root key (version 0).
keyring trust_anchor(const ed25519_public_key& root);

// Decides whether `candidate` may replace `current` (TUF root rules): version not lower (equal
// only for identical content), signed by current.root_threshold of current's roots AND by
// candidate.root_threshold of its own roots (so a root rotation needs the old and the new root),
// and not expired at `now`. downgrade_refused for an older version, signature_error otherwise.
result<void> verify_keyring_update(const keyring& current, const keyring& candidate, std::uint64_t now);

// Expiry with a grace period: signature_error ("keyring vN expired ...") once now > expires + grace.
result<void> check_keyring_fresh(const keyring& k, std::uint64_t now, std::uint64_t grace_seconds);

// Finds the release key of `k` that signed `message` with `sig` and may sign for `model` at
// `now`. A match by a revoked or out-of-validity key is refused with a message naming it.
result<ed25519_public_key> trusted_release_key(const keyring& k, const std::string& model, std::span<const std::uint8_t> message,
                                               const ed25519_signature& sig, std::uint64_t now);

}  // namespace mallorn::core
