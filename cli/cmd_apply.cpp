// mallorn patch / verify: the device side. Both report the seed's PatchVerification fields
// (source_valid, patch_valid, signature_valid, expected_target, actual_target), also on failure.
#include <iostream>

#include "cli_args.hpp"
#include "cli_keys.hpp"
#include "cli_output.hpp"
#include "cli_progress.hpp"
#include "commands.hpp"
#include "mallorn/core/hash.hpp"

namespace mallorn::cli {
namespace {

const std::set<std::string> flag_opts = {"--json"};

// --pubkey and --min-version; returns an exit code when the options are unusable.
std::optional<int> apply_options_from(const parsed_args& a, const std::string& cmd, bool json, core::apply_options& opts) {
  if (auto p = a.value("--pubkey")) {
    auto key = load_public_key(*p);
    if (!key) return report_error(key.err(), json);
    opts.public_key = *key;
  }
  if (auto m = a.value("--min-version")) {
    auto v = parse_uint(*m);
    if (!v) return usage_error("--min-version must be a whole number, got '" + *m + "'", cmd, json);
    opts.min_target_version = *v;
  }
  return std::nullopt;
}

// null = not checked. signature_valid is null without --pubkey: nothing was verified, and a
// signed patch is not "valid" merely because it carries a signature.
nlohmann::json verification_ok(const core::apply_report& r, const core::apply_options& opts) {
  return {{"valid", true},
          {"source_valid", true},
          {"patch_valid", true},
          {"signature_valid", opts.public_key ? nlohmann::json(true) : nlohmann::json(nullptr)},
          {"signed", r.header.is_signed()},
          {"expected_target", core::to_hex(r.header.target_sha256)},
          {"actual_target", core::to_hex(r.actual_target)},
          {"target_size", r.header.target_size},
          {"target_version", r.header.target_version}};
}

// On failure, what is known follows from the order the applier checks in: header, signature,
// version, source hash, then body and target hash.
nlohmann::json verification_failed(const core::error& e, const std::string& patch, const core::apply_options& opts) {
  auto header = core::read_patch_header(patch);
  nlohmann::json j = {{"valid", false}, {"source_valid", nullptr}, {"patch_valid", nullptr},
                      {"signature_valid", nullptr}, {"expected_target", nullptr}, {"actual_target", nullptr}};
  if (!header) {
    j["patch_valid"] = false;
    return j;
  }
  j["signed"] = header->is_signed();
  j["expected_target"] = core::to_hex(header->target_sha256);
  j["target_version"] = header->target_version;
  using core::errc;
  bool past_signature = e.code != errc::signature_error;
  bool past_source = past_signature && e.code != errc::downgrade_refused && e.code != errc::source_hash_mismatch;
  if (opts.public_key) j["signature_valid"] = past_signature;
  if (e.code == errc::source_hash_mismatch) j["source_valid"] = false;
  else if (past_source) j["source_valid"] = true;
  if (e.code == errc::invalid_patch || e.code == errc::target_hash_mismatch || e.code == errc::unsupported_version)
    j["patch_valid"] = false;
  return j;
}

}  // namespace

int cmd_patch(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--pubkey", "--min-version"}, flag_opts, a))
    return usage_error(*e, "patch", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.output();
  if (a.positional.size() != 2 || !out) return usage_error("patch needs OLD PATCH -o OUT", "patch", json);
  core::apply_options opts;
  if (auto rc = apply_options_from(a, "patch", json, opts)) return *rc;
  progress_bar bar("patch");
  opts.progress = bar.callback();
  auto r = core::apply_patch_file(a.positional[0], a.positional[1], *out, opts);
  bar.clear();
  if (!r) return report_error(r.err(), json, verification_failed(r.err(), a.positional[1], opts));
  if (json) {
    auto j = verification_ok(*r, opts);
    j["ok"] = true;
    j["output"] = *out;
    print_json(j);
  } else {
    std::cout << "wrote " << *out << ": " << r->header.target_size << " bytes, sha256 " << core::to_hex(r->actual_target)
              << " (matches the patch's target"
              << (opts.public_key ? ", signature verified" : r->header.is_signed() ? "; signed, pass --pubkey to check" : "")
              << ")\n";
  }
  return exit_ok;
}

int cmd_verify(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"--pubkey", "--min-version"}, flag_opts, a)) return usage_error(*e, "verify", a.has("--json"));
  bool json = a.has("--json");
  if (a.positional.size() != 2) return usage_error("verify needs OLD PATCH", "verify", json);
  core::apply_options opts;
  if (auto rc = apply_options_from(a, "verify", json, opts)) return *rc;
  progress_bar bar("verify");
  opts.progress = bar.callback();
  auto r = core::verify_patch_file(a.positional[0], a.positional[1], opts);
  bar.clear();
  if (!r) return report_error(r.err(), json, verification_failed(r.err(), a.positional[1], opts));
  if (json) {
    auto j = verification_ok(*r, opts);
    j["ok"] = true;
    print_json(j);
  } else {
    std::cout << "source_valid:    yes\npatch_valid:     yes\n"
              << "signature_valid: "
              << (opts.public_key ? "yes" : r->header.is_signed() ? "not checked (signed; pass --pubkey)" : "not checked (unsigned)")
              << "\nexpected_target: " << core::to_hex(r->header.target_sha256)
              << "\nactual_target:   " << core::to_hex(r->actual_target) << "\n";
  }
  return exit_ok;
}

}  // namespace mallorn::cli
