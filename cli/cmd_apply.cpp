// mallorn patch / verify: the commands that apply patches.
#include <iostream>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"

namespace mallorn::cli {
namespace {

// Shared options of patch and verify: --pubkey, --min-version.
std::optional<int> apply_options_from(const parsed_args& a, const std::string& cmd, bool json, core::apply_options& opts) {
  if (auto p = a.value("--pubkey")) {
    auto bytes = core::read_file(*p);
    if (!bytes) return report_error(bytes.err().with("reading public key " + *p), json);
    auto key = core::ed25519_public_key_from(*bytes);
    if (!key) return report_error(key.err().with(*p), json);
    opts.public_key = *key;
  }
  if (auto m = a.value("--min-version")) {
    try {
      opts.min_target_version = std::stoull(*m);
    } catch (...) {
      return usage_error("--min-version must be a whole number", cmd, json);
    }
  }
  return std::nullopt;
}

nlohmann::json verification_json(bool ok, const core::apply_report* r, const core::patch_header* h) {
  return {{"source_valid", ok},
          {"patch_valid", ok},
          {"signature_valid", ok && h && h->is_signed()},
          {"signed", h && h->is_signed()},
          {"expected_target", h ? core::to_hex(h->target_sha256) : ""},
          {"actual_target", r ? core::to_hex(r->actual_target) : ""},
          {"target_size", h ? h->target_size : 0},
          {"target_version", h ? h->target_version : 0}};
}

}  // namespace

int cmd_patch(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--pubkey", "--min-version"}, {"--json"}, a))
    return usage_error(*e, "patch", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.value("-o") ? a.value("-o") : a.value("--output");
  if (a.positional.size() != 2 || !out) return usage_error("patch needs OLD PATCH -o OUT", "patch", json);
  core::apply_options opts;
  if (auto rc = apply_options_from(a, "patch", json, opts)) return *rc;
  progress_bar bar("patch");
  opts.progress = bar.callback();
  auto r = core::apply_patch_file(a.positional[0], a.positional[1], *out, opts);
  if (!r) return report_error(r.err(), json);
  if (json) {
    auto j = verification_json(true, &*r, &r->header);
    j["ok"] = true;
    j["output"] = *out;
    print_json(j);
  } else {
    std::cout << "wrote " << *out << " (" << r->header.target_size << " bytes, sha256 " << core::to_hex(r->actual_target)
              << ", verified" << (r->header.is_signed() && opts.public_key ? ", signature ok" : "") << ")\n";
  }
  return exit_ok;
}

int cmd_verify(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"--pubkey", "--min-version"}, {"--json"}, a)) return usage_error(*e, "verify", a.has("--json"));
  bool json = a.has("--json");
  if (a.positional.size() != 2) return usage_error("verify needs OLD PATCH", "verify", json);
  core::apply_options opts;
  if (auto rc = apply_options_from(a, "verify", json, opts)) return *rc;
  progress_bar bar("verify");
  opts.progress = bar.callback();
  auto r = core::verify_patch_file(a.positional[0], a.positional[1], opts);
  if (!r) return report_error(r.err(), json);
  if (json) {
    auto j = verification_json(true, &*r, &r->header);
    j["ok"] = true;
    j["signature_valid"] = r->header.is_signed() && opts.public_key.has_value();
    print_json(j);
  } else {
    std::cout << "ok: the patch turns " << a.positional[0] << " into sha256 " << core::to_hex(r->actual_target)
              << (opts.public_key ? " (signature verified)" : r->header.is_signed() ? " (signed; pass --pubkey to check)" : "")
              << "\n";
  }
  return exit_ok;
}

}  // namespace mallorn::cli
