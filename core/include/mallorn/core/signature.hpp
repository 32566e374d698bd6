// Ed25519 through OpenSSL. Key files follow the seed: public key = 32 raw bytes,
// private key = 64 raw bytes (32-byte seed followed by the 32-byte public key).
#pragma once
#include <array>
#include <cstdint>
#include <span>

#include "mallorn/core/error.hpp"

namespace mallorn::core {

using ed25519_public_key = std::array<std::uint8_t, 32>;
using ed25519_private_key = std::array<std::uint8_t, 64>;
using ed25519_signature = std::array<std::uint8_t, 64>;

struct ed25519_keypair {
  ed25519_public_key public_key;
  ed25519_private_key private_key;
};

result<ed25519_keypair> ed25519_generate();
// Rejects a 64-byte private key whose second half is not the seed's public key.
result<ed25519_private_key> ed25519_private_key_from(std::span<const std::uint8_t> bytes);
result<ed25519_public_key> ed25519_public_key_from(std::span<const std::uint8_t> bytes);
result<ed25519_signature> ed25519_sign(const ed25519_private_key& key, std::span<const std::uint8_t> message);
// True only for a valid signature; errors (bad key encoding) count as invalid.
bool ed25519_verify(const ed25519_public_key& key, std::span<const std::uint8_t> message,
                    const ed25519_signature& sig);

}  // namespace mallorn::core
