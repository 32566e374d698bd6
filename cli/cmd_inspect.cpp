// mallorn info / fingerprint: read-only inspection.
#include <iostream>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/fingerprint.hpp"
#include "mallorn/core/patch_applier.hpp"

namespace mallorn::cli {

int cmd_info(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {}, {"--json"}, a)) return usage_error(*e, "info", a.has("--json"));
  bool json = a.has("--json");
  if (a.positional.size() != 1) return usage_error("info needs PATCH", "info", json);
  auto h = core::read_patch_header(a.positional[0]);
  if (!h) return report_error(h.err(), json);
  std::uint64_t patch_size = std::filesystem::file_size(a.positional[0]);
  const char* profile = h->profile == core::patch_profile::mcu ? "mcu" : "standard";
  const char* compression = h->compression == core::compression_method::lzss ? "lzss" : "zstd";
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& s : h->tensor_stats)
    tensors.push_back({{"name", s.name}, {"encoding", core::tensor_encoding_name(s.encoding)},
                       {"target_bytes", s.target_bytes}, {"patch_bytes", s.patch_bytes}});
  nlohmann::json j = {{"ok", true},
                      {"format", core::format_name(h->format)},
                      {"version", h->version},
                      {"profile", profile},
                      {"source_hash", core::to_hex(h->source_sha256)},
                      {"target_hash", core::to_hex(h->target_sha256)},
                      {"source_size", h->source_size},
                      {"target_size", h->target_size},
                      {"patch_size", patch_size},
                      {"body_size", h->body_size},
                      {"target_version", h->target_version},
                      {"created_at", h->created_at},
                      {"compression", compression},
                      {"level", h->level},
                      {"neural", h->neural()},
                      {"signed", h->is_signed()},
                      {"tensors_modified", h->tensors_modified},
                      {"tensors_unchanged", h->tensors_unchanged},
                      {"tensors_added", h->tensors_added},
                      {"tensors_removed", h->tensors_removed},
                      {"tensors", tensors}};
  if (json) {
    print_json(j);
    return exit_ok;
  }
  std::cout << "format:         " << core::format_name(h->format) << " (container v" << int(h->version) << ", " << profile
            << " profile)\n"
            << "source:         " << h->source_size << " bytes, sha256 " << core::to_hex(h->source_sha256) << "\n"
            << "target:         " << h->target_size << " bytes, sha256 " << core::to_hex(h->target_sha256) << "\n"
            << "target version: " << h->target_version << "\n"
            << "patch:          " << patch_size << " bytes (body " << h->body_size << ")\n"
            << "compression:    " << compression << " level " << int(h->level) << (h->neural() ? ", neural" : "") << "\n"
            << "signed:         " << (h->is_signed() ? "yes (Ed25519)" : "no") << "\n"
            << "created at:     " << h->created_at << "\n"
            << "tensors:        " << h->tensors_modified << " modified, " << h->tensors_unchanged << " unchanged, "
            << h->tensors_added << " added, " << h->tensors_removed << " removed\n";
  for (const auto& s : h->tensor_stats)
    std::cout << "  " << core::tensor_encoding_name(s.encoding) << "\t" << s.target_bytes << " -> " << s.patch_bytes
              << "\t" << s.name << "\n";
  return exit_ok;
}

int cmd_fingerprint(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {}, {"--json"}, a)) return usage_error(*e, "fingerprint", a.has("--json"));
  bool json = a.has("--json");
  if (a.positional.size() != 1) return usage_error("fingerprint needs MODEL", "fingerprint", json);
  auto fp = core::fingerprint_file(a.positional[0]);
  if (!fp) return report_error(fp.err(), json);
  if (json) {
    print_json({{"ok", true},
                {"format", core::format_id(fp->format)},
                {"file_size", fp->file_size},
                {"header_hash", fp->header_hash},
                {"tail_hash", fp->tail_hash},
                {"combined_hash", fp->combined_hash},
                {"short_id", fp->short_id()}});
  } else {
    std::cout << fp->short_id() << "  " << a.positional[0] << " (" << core::format_id(fp->format) << ", "
              << fp->file_size << " bytes, combined " << fp->combined_hash << ")\n";
  }
  return exit_ok;
}

}  // namespace mallorn::cli
