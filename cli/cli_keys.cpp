#include "cli_keys.hpp"

#include "mallorn/core/key_file.hpp"

namespace mallorn::cli {

core::result<core::ed25519_private_key> load_private_key(const std::string& path) {
  return core::load_private_key_file(path);
}

core::result<core::ed25519_public_key> load_public_key(const std::string& path) {
  return core::load_public_key_file(path);
}

}  // namespace mallorn::cli
