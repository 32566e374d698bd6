// Loading Ed25519 key files for diff --sign, sign --key and patch/verify --pubkey.
#pragma once
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::cli {

// A 64-byte private key file (seed + public key), as written by `mallorn keygen`.
core::result<core::ed25519_private_key> load_private_key(const std::string& path);
// A 32-byte public key file.
core::result<core::ed25519_public_key> load_public_key(const std::string& path);

}  // namespace mallorn::cli
