// mallorn diff: old + new model -> patch, with the numbers a release engineer wants to see.
#include <cstdio>
#include <iostream>

#include "cli_args.hpp"
#include "cli_keys.hpp"
#include "cli_output.hpp"
#include "cli_progress.hpp"
#include "commands.hpp"
#include "mallorn/formats/differ.hpp"
#include "mallorn/formats/mcu_patch.hpp"

namespace mallorn::cli {

int cmd_diff(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {"-o", "--output", "--level", "--sign", "--target-version", "--profile", "--old-window", "--threads"},
                          {"--neural", "--generic", "--json"}, a))
    return usage_error(*e, "diff", a.has("--json"));
  bool json = a.has("--json");
  auto out = a.output();
  if (a.positional.size() != 2 || !out) return usage_error("diff needs OLD NEW -o PATCH", "diff", json);

  std::string profile = a.value("--profile").value_or("standard");
  if (profile != "standard" && profile != "mcu")
    return usage_error("--profile must be standard or mcu, got '" + profile + "'", "diff", json);
  bool mcu = profile == "mcu";
  if (mcu && (a.has("--neural") || a.has("--generic")))
    return usage_error("--neural and --generic apply to the standard profile only", "diff", json);

  formats::mcu_options mcu_opts;
  if (auto w = a.value("--old-window")) {
    auto v = parse_uint(*w);
    if (!mcu || !v || *v < 256 || *v > (1u << 30) || (*v & (*v - 1)))
      return usage_error("--old-window takes a power of two in 256..2^30 with --profile mcu", "diff", json);
    mcu_opts.old_window = static_cast<std::uint32_t>(*v);
  }

  formats::diff_options opts;
  if (mcu) opts.level = 9;  // the mcu encoder's default: try every block size
  opts.neural = a.has("--neural");
  opts.tensor_aware = !a.has("--generic");
  if (auto l = a.value("--level")) {
    auto v = parse_uint(*l);
    if (!v || *v < 1 || *v > 22) return usage_error("--level must be 1..22, got '" + *l + "'", "diff", json);
    opts.level = static_cast<int>(*v);
  }
  if (auto t = a.value("--threads")) {
    auto v = parse_uint(*t);
    if (mcu || !v || *v < 1 || *v > 1024)
      return usage_error("--threads takes 1..1024 with the standard profile, got '" + *t + "'", "diff", json);
    opts.threads = static_cast<unsigned>(*v);
  }
  if (auto tv = a.value("--target-version")) {
    auto v = parse_uint(*tv);
    if (!v) return usage_error("--target-version must be a whole number, got '" + *tv + "'", "diff", json);
    opts.target_version = *v;
  }
  if (auto k = a.value("--sign")) {
    auto key = load_private_key(*k);
    if (!key) return report_error(key.err(), json);
    opts.signing_key = *key;
  }

  progress_bar bar("diff");
  opts.progress = bar.callback();
  mcu_opts.level = opts.level;
  mcu_opts.target_version = opts.target_version;
  mcu_opts.signing_key = opts.signing_key;
  mcu_opts.progress = opts.progress;
  auto st = mcu ? formats::create_mcu_patch_file(a.positional[0], a.positional[1], *out, mcu_opts)
                : formats::create_patch_file(a.positional[0], a.positional[1], *out, opts);
  bar.clear();
  if (!st) return report_error(st.err(), json);

  // "ratio" is patch / new file (what fraction of a full download this is); the seed's
  // compression_ratio is the inverse.
  double ratio = st->target_size ? static_cast<double>(st->patch_size) / static_cast<double>(st->target_size) : 0;
  if (json) {
    print_json({{"ok", true},
                {"patch", *out},
                {"format", core::format_id(st->format)},
                {"source_size", st->source_size},
                {"target_size", st->target_size},
                {"patch_size", st->patch_size},
                {"ratio", ratio},
                {"compression_ratio", st->compression_ratio},
                {"tensors_modified", st->tensors_modified},
                {"tensors_unchanged", st->tensors_unchanged},
                {"tensors_added", st->tensors_added},
                {"tensors_removed", st->tensors_removed},
                {"level", opts.level},
                {"profile", profile},
                {"neural", opts.neural},
                {"tensor_aware", opts.tensor_aware},
                {"target_version", opts.target_version},
                {"signed", opts.signing_key.has_value()}});
    return exit_ok;
  }
  char line[160];
  std::snprintf(line, sizeof line, "%llu bytes = %.2f%% of the new model (%llu bytes), %.1fx smaller",
                static_cast<unsigned long long>(st->patch_size), ratio * 100,
                static_cast<unsigned long long>(st->target_size), st->compression_ratio);
  std::cout << "wrote " << *out << " (" << core::format_name(st->format) << (mcu ? ", mcu profile" : "") << (opts.signing_key ? ", signed" : "")
            << "): " << line << "\n"
            << "tensors: " << st->tensors_modified << " modified, " << st->tensors_unchanged << " unchanged, "
            << st->tensors_added << " added, " << st->tensors_removed << " removed\n";
  return exit_ok;
}

}  // namespace mallorn::cli
