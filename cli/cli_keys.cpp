#include "cli_keys.hpp"

#include "mallorn/core/io.hpp"

namespace mallorn::cli {

core::result<core::ed25519_private_key> load_private_key(const std::string& path) {
  auto bytes = core::read_file(path);
  if (!bytes) return bytes.err().with("reading private key " + path);
  // The library also accepts a bare 32-byte seed, but on the command line a 32-byte file is
  // almost always the .pub passed by mistake: signing with it would "work" with a key nobody has.
  if (bytes->size() != 64)
    return core::make_error(core::errc::signature_error,
                            path + ": a private key file has 64 bytes, this one has " + std::to_string(bytes->size()) +
                                (bytes->size() == 32 ? " (is it the .pub file?)" : ""));
  auto key = core::ed25519_private_key_from(*bytes);
  if (!key) return key.err().with(path);
  return key;
}

core::result<core::ed25519_public_key> load_public_key(const std::string& path) {
  auto bytes = core::read_file(path);
  if (!bytes) return bytes.err().with("reading public key " + path);
  if (bytes->size() != 32)
    return core::make_error(core::errc::signature_error,
                            path + ": a public key file has 32 bytes, this one has " + std::to_string(bytes->size()) +
                                (bytes->size() == 64 ? " (is it the private .key file?)" : ""));
  auto key = core::ed25519_public_key_from(*bytes);
  if (!key) return key.err().with(path);
  return key;
}

}  // namespace mallorn::cli
