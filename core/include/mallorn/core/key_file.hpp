// Loading Ed25519 key files (as written by `mallorn keygen`): shared by the CLI, mallornd and the agent.
#pragma once
#include <filesystem>

#include "mallorn/core/error.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::core {

// A 64-byte private key file (seed + public key). A 32-byte file is refused even though a bare
// seed would do: it is almost always the .pub passed by mistake.
result<ed25519_private_key> load_private_key_file(const std::filesystem::path& path);
// A 32-byte public key file.
result<ed25519_public_key> load_public_key_file(const std::filesystem::path& path);

}  // namespace mallorn::core
