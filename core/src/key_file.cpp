#include "mallorn/core/key_file.hpp"

#include "mallorn/core/io.hpp"

namespace mallorn::core {

result<ed25519_private_key> load_private_key_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto bytes = read_file(path);
  if (!bytes) return bytes.err().with("reading private key " + name);
  if (bytes->size() != 64)
    return make_error(errc::signature_error, name + ": a private key file has 64 bytes, this one has " +
                                                 std::to_string(bytes->size()) +
                                                 (bytes->size() == 32 ? " (is it the .pub file?)" : ""));
  auto key = ed25519_private_key_from(*bytes);
  if (!key) return key.err().with(name);
  return key;
}

result<ed25519_public_key> load_public_key_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto bytes = read_file(path);
  if (!bytes) return bytes.err().with("reading public key " + name);
  if (bytes->size() != 32)
    return make_error(errc::signature_error, name + ": a public key file has 32 bytes, this one has " +
                                                 std::to_string(bytes->size()) +
                                                 (bytes->size() == 64 ? " (is it the private .key file?)" : ""));
  auto key = ed25519_public_key_from(*bytes);
  if (!key) return key.err().with(name);
  return key;
}

}  // namespace mallorn::core
