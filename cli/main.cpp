// mallorn: make, inspect, sign and apply model delta patches.
#include <cstring>
#include <exception>
#include <iostream>

#include "cli_output.hpp"
#include "commands.hpp"

namespace mallorn::cli {

const std::vector<command>& commands() {
  static const std::vector<command> all = {
      {"diff", "make a patch from OLD to NEW",
       "usage: mallorn diff OLD NEW -o PATCH [--level N] [--neural] [--sign KEY] [--target-version N] [--generic]\n"
       "                    [--profile standard|mcu] [--old-window BYTES] [--threads N] [--json]\n"
       "  --level N            zstd level 1..22 (default 3); 9 and up also try bsdiff-style matching of metadata\n"
       "                       (mcu profile: default 9, which tries every block size)\n"
       "  --profile P          standard (zstd frames, default) or mcu (for microcontrollers: applied by\n"
       "                       firmware/ mallorn_lite in a 1 KiB context; not by `mallorn patch`)\n"
       "  --old-window BYTES   mcu profile: how far behind its furthest read the device may read the old\n"
       "                       image (power of two, default 65536)\n"
       "  --neural             also try byte-planed (ZipNN-style) encodings of weights\n"
       "  --sign KEY           sign with a 64-byte Ed25519 private key file\n"
       "  --target-version N   release number devices compare for downgrade protection (default 0)\n"
       "  --generic            plain binary delta, without tensor awareness\n"
       "  --threads N          standard profile: worker threads (default: every core); the patch is\n"
       "                       byte-identical for any N\n",
       cmd_diff},
      {"patch", "apply PATCH to OLD, writing OUT",
       "usage: mallorn patch OLD PATCH -o OUT [--pubkey PUB] [--min-version N] [--json]\n"
       "  OUT appears only after its SHA-256 matched the patch's target hash; it may be OLD itself\n"
       "  (in-place update: OLD stays intact until the verified output replaces it).\n"
       "  --pubkey PUB         require a valid signature by this 32-byte Ed25519 public key\n"
       "  --min-version N      refuse patches whose target version is below N\n",
       cmd_patch},
      {"verify", "check that PATCH turns OLD into its target, without writing it",
       "usage: mallorn verify OLD PATCH [--pubkey PUB] [--min-version N] [--json]\n"
       "  Applies the patch into a hash only: checks source, body and target SHA-256 (and the\n"
       "  signature with --pubkey) and prints source_valid, patch_valid, signature_valid,\n"
       "  expected_target and actual_target. Nothing is written.\n",
       cmd_verify},
      {"info", "show a patch's header",
       "usage: mallorn info PATCH [--json]\n"
       "  Format, container version, profile, source/target SHA-256 and sizes, target version,\n"
       "  creation time, compression, signed, and how each changed tensor was encoded.\n",
       cmd_info},
      {"fingerprint", "quick model fingerprint (size + MD5 of head and tail)",
       "usage: mallorn fingerprint MODEL [--json]\n", cmd_fingerprint},
      {"keygen", "make an Ed25519 key pair: PREFIX.key (64 bytes) and PREFIX.pub (32 bytes)",
       "usage: mallorn keygen -o PREFIX [--json]\n", cmd_keygen},
      {"sign", "sign an existing patch", "usage: mallorn sign PATCH --key KEY -o OUT [--json]\n", cmd_sign},
      {"fleet", "staged rollouts on a mallornd server (docs/rollouts.md)",
       "usage: mallorn fleet rollout list|show ID [--watch]|pause|resume|advance|abort ID [--reason TEXT]\n"
       "       mallorn fleet rollout create MODEL VERSION --stages 1,10,50,100 [--group G]\n"
       "           [--stage-min-seconds N] [--max-failure-rate R] [--min-reports N] [--pause-timeout N]\n"
       "           [--start-at UNIX] [--window JSON]   JSON: {\"days\":[\"mon\"],\"start\":\"02:00\",\"end\":\"05:00\",\"tz\":\"Europe/Berlin\"}\n"
       "           (tz: \"UTC\", \"+02:00\" or an IANA zone; a device's \"tz\" tag overrides it)\n"
       "       mallorn fleet group list | show NAME | delete NAME\n"
       "       mallorn fleet group put NAME [--match 'site=berlin,hw=rpi4|rpi5,runtime?,debug!'] [--devices a,b]\n"
       "       mallorn fleet devices [DEVICE]\n"
       "       mallorn fleet devices pending | enrolled | admit|reject|revoke DEVICE   (--device-auth)\n"
       "       mallorn fleet audit [--actor NAME] [--limit N]\n"
       "  common: --server URL (env MALLORN_SERVER, default http://127.0.0.1:8080; plain HTTP)\n"
       "          --token-file FILE (or env MALLORN_TOKEN), --actor NAME (default $USER), --json\n",
       cmd_fleet},
      {"keyring", "manage the root-signed list of release keys (docs/security.md)",
       "usage: mallorn keyring init -o FILE --root ROOT.pub[,ROOT2.pub] [--threshold N] [--expires DAYS] [--json]\n"
       "       mallorn keyring add-key FILE --key RELEASE.pub [--models a,b] [--not-before T] [--not-after T]\n"
       "       mallorn keyring revoke FILE (--key RELEASE.pub | --keyid HEX)\n"
       "       mallorn keyring rotate-root FILE --root NEW.pub[,NEW2.pub] [--threshold N]\n"
       "       mallorn keyring renew FILE [--expires DAYS | --expires-at UNIX]\n"
       "       mallorn keyring sign FILE --key ROOT.key [-o OUT]\n"
       "       mallorn keyring show FILE [--json]\n"
       "       mallorn keyring export FILE --binary -o OUT     (the compact form mallorn_lite verifies)\n"
       "  Editing a signed keyring starts its next version (signatures dropped, same lifetime); sign it\n"
       "  with the root key, and for rotate-root with the old and the new root. Edits write FILE (or -o OUT)\n"
       "  atomically. Default expiry: 365 days. T and UNIX are unix seconds.\n",
       cmd_keyring},
  };
  return all;
}

namespace {

void print_overview() {
  std::cout << "mallorn " MALLORN_VERSION " - small, verified delta patches for ML models\n\n"
            << "usage: mallorn COMMAND [ARGS]\n\ncommands:\n";
  for (const auto& c : commands()) std::cout << "  " << c.name << std::string(13 - std::strlen(c.name), ' ') << c.summary << "\n";
  std::cout << "\n'mallorn COMMAND --help' for a command's options. Exit code 0 only on success.\n";
}

const command* find(const std::string& name) {
  for (const auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

}  // namespace
}  // namespace mallorn::cli

int main(int argc, char** argv) {
  using namespace mallorn::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    print_overview();
    return args.empty() ? exit_usage : exit_ok;
  }
  if (args[0] == "--version") {
    std::cout << "mallorn " MALLORN_VERSION "\n";
    return exit_ok;
  }
  if (args[0] == "help") {
    if (args.size() == 1) {
      print_overview();
      return exit_ok;
    }
    const command* c = find(args[1]);
    if (!c) return usage_error("unknown command '" + args[1] + "'", "", false);
    std::cout << c->usage;
    return exit_ok;
  }
  const command* c = find(args[0]);
  if (!c) return usage_error("unknown command '" + args[0] + "'", "", false);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& a : rest) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      std::cout << c->usage;
      return exit_ok;
    }
  }
  // The libraries report through result<>; anything thrown is a bug or out-of-memory, and still
  // deserves a message and a failure exit code rather than an abort.
  try {
    return c->run(rest);
  } catch (const std::exception& e) {
    std::cerr << "mallorn: internal error: " << e.what() << "\n";
    return exit_failed;
  }
}
