// mallorn keygen / sign: release keys and signing existing patches.
#include <sys/stat.h>

#include <iostream>

#include "cli_args.hpp"
#include "cli_keys.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"

namespace mallorn::cli {

int cmd_keygen(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output"}, {"--json"}, a)) return usage_error(*e, "keygen", a.has("--json"));
  bool json = a.has("--json");
  auto prefix = a.output();
  if (!prefix || prefix->empty() || !a.positional.empty()) return usage_error("keygen needs -o PREFIX", "keygen", json);
  auto kp = core::ed25519_generate();
  if (!kp) return report_error(kp.err(), json);
  std::string key_path = *prefix + ".key", pub_path = *prefix + ".pub";
  // The atomic writer creates its temp file with 0666 & ~umask: with umask 077 the private key
  // is owner-only from its first byte, never readable by others even briefly.
  mode_t old_mask = ::umask(077);
  auto wrote = core::write_file_atomic(key_path, kp->private_key);
  ::umask(old_mask);
  if (!wrote) return report_error(wrote.err(), json);
  if (auto w = core::write_file_atomic(pub_path, kp->public_key); !w) return report_error(w.err(), json);
  if (json)
    print_json({{"ok", true}, {"private_key", key_path}, {"public_key", pub_path}, {"public_key_hex", core::to_hex(kp->public_key)}});
  else
    std::cout << "wrote " << key_path << " (private, 64 bytes, mode 0600) and " << pub_path << " (public, 32 bytes)\n";
  return exit_ok;
}

int cmd_sign(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--key"}, {"--json"}, a)) return usage_error(*e, "sign", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.output();
  auto key_path = a.value("--key");
  if (a.positional.size() != 1 || !out || !key_path) return usage_error("sign needs PATCH --key KEY -o OUT", "sign", json);
  auto key = load_private_key(*key_path);
  if (!key) return report_error(key.err(), json);
  auto patch = core::read_file(a.positional[0]);
  if (!patch) return report_error(patch.err(), json);
  auto signed_patch = core::sign_patch(*patch, *key);
  if (!signed_patch) return report_error(signed_patch.err(), json);
  if (auto w = core::write_file_atomic(*out, *signed_patch); !w) return report_error(w.err(), json);
  if (json)
    print_json({{"ok", true}, {"patch", *out}, {"patch_size", signed_patch->size()}});
  else
    std::cout << "wrote signed patch " << *out << " (" << signed_patch->size() << " bytes)\n";
  return exit_ok;
}

}  // namespace mallorn::cli
