// mallorn diff / keygen / sign: the commands that produce patches and keys.
#include <sys/stat.h>

#include <iostream>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::cli {
namespace {

core::result<core::ed25519_private_key> load_private_key(const std::string& path) {
  auto bytes = core::read_file(path);
  if (!bytes) return bytes.err().with("reading key " + path);
  auto key = core::ed25519_private_key_from(*bytes);
  if (!key) return key.err().with(path);
  return key;
}

core::result<std::uint64_t> parse_number(const std::string& what, const std::string& s) {
  try {
    std::size_t used = 0;
    auto v = std::stoull(s, &used);
    if (used == s.size()) return static_cast<std::uint64_t>(v);
  } catch (...) {
  }
  return core::make_error(core::errc::invalid_argument, what + " must be a whole number, got '" + s + "'");
}

}  // namespace

int cmd_diff(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--level", "--sign", "--target-version"},
                          {"--neural", "--generic", "--json"}, a))
    return usage_error(*e, "diff", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.value("-o") ? a.value("-o") : a.value("--output");
  if (a.positional.size() != 2 || !out) return usage_error("diff needs OLD NEW -o PATCH", "diff", json);

  formats::diff_options opts;
  opts.neural = a.has("--neural");
  opts.tensor_aware = !a.has("--generic");
  if (auto l = a.value("--level")) {
    auto v = parse_number("--level", *l);
    if (!v || *v < 1 || *v > 22) return usage_error("--level must be 1..22", "diff", json);
    opts.level = static_cast<int>(*v);
  }
  if (auto tv = a.value("--target-version")) {
    auto v = parse_number("--target-version", *tv);
    if (!v) return usage_error(v.err().message, "diff", json);
    opts.target_version = *v;
  }
  if (auto k = a.value("--sign")) {
    auto key = load_private_key(*k);
    if (!key) return report_error(key.err(), json);
    opts.signing_key = *key;
  }
  progress_bar bar("diff");
  opts.progress = bar.callback();
  auto st = formats::create_patch_file(a.positional[0], a.positional[1], *out, opts);
  if (!st) return report_error(st.err(), json);
  double pct = st->target_size ? 100.0 * st->patch_size / st->target_size : 0;
  if (json) {
    print_json({{"ok", true},
                {"patch", *out},
                {"format", core::format_id(st->format)},
                {"source_size", st->source_size},
                {"target_size", st->target_size},
                {"patch_size", st->patch_size},
                {"compression_ratio", st->compression_ratio},
                {"tensors_modified", st->tensors_modified},
                {"tensors_unchanged", st->tensors_unchanged},
                {"tensors_added", st->tensors_added},
                {"tensors_removed", st->tensors_removed},
                {"signed", opts.signing_key.has_value()}});
  } else {
    std::cout << "wrote " << *out << ": " << st->patch_size << " bytes (" << pct << "% of the new "
              << core::format_name(st->format) << " model, " << st->compression_ratio << "x)\n"
              << "tensors: " << st->tensors_modified << " modified, " << st->tensors_unchanged << " unchanged, "
              << st->tensors_added << " added, " << st->tensors_removed << " removed\n";
  }
  return exit_ok;
}

int cmd_keygen(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output"}, {"--json"}, a)) return usage_error(*e, "keygen", a.has("--json"));
  bool json = a.has("--json");
  auto prefix = a.value("-o") ? a.value("-o") : a.value("--output");
  if (!prefix || !a.positional.empty()) return usage_error("keygen needs -o PREFIX", "keygen", json);
  auto kp = core::ed25519_generate();
  if (!kp) return report_error(kp.err(), json);
  std::string key_path = *prefix + ".key", pub_path = *prefix + ".pub";
  // The private key is created owner-only before any byte of it is written.
  mode_t old_mask = ::umask(077);
  auto wrote = core::write_file_atomic(key_path, kp->private_key);
  ::umask(old_mask);
  if (!wrote) return report_error(wrote.err(), json);
  if (auto w = core::write_file_atomic(pub_path, kp->public_key); !w) return report_error(w.err(), json);
  if (json)
    print_json({{"ok", true}, {"private_key", key_path}, {"public_key", pub_path}, {"public_key_hex", core::to_hex(kp->public_key)}});
  else
    std::cout << "wrote " << key_path << " (private, 64 bytes) and " << pub_path << " (public, 32 bytes)\n";
  return exit_ok;
}

int cmd_sign(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--key"}, {"--json"}, a)) return usage_error(*e, "sign", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.value("-o") ? a.value("-o") : a.value("--output");
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
