// mallorn info / fingerprint: read-only inspection of a patch header or a model file.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_output.hpp"
#include "commands.hpp"
#include "mallorn/core/fingerprint.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_applier.hpp"

namespace mallorn::cli {
namespace {

using core::compression_name;
using core::profile_name;

std::string utc_time(std::uint64_t unix_seconds) {
  if (unix_seconds == 0) return "unknown";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[32];
  if (!::gmtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm)) return std::to_string(unix_seconds);
  return buf;
}

nlohmann::json info_json(const core::patch_header& h, std::uint64_t patch_size) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& s : h.tensor_stats)
    tensors.push_back({{"name", s.name}, {"encoding", core::tensor_encoding_name(s.encoding)},
                       {"target_bytes", s.target_bytes}, {"patch_bytes", s.patch_bytes}});
  return {{"ok", true},
          {"format", core::format_name(h.format)},
          {"version", h.version},
          {"profile", profile_name(h.profile)},
          {"source_hash", core::to_hex(h.source_sha256)},
          {"target_hash", core::to_hex(h.target_sha256)},
          {"source_size", h.source_size},
          {"target_size", h.target_size},
          {"patch_size", patch_size},
          {"body_size", h.body_size},
          {"target_version", h.target_version},
          {"created_at", h.created_at},
          {"compression", compression_name(h.compression)},
          {"level", h.level},
          {"neural", h.neural()},
          {"signed", h.is_signed()},
          {"tensors_modified", h.tensors_modified},
          {"tensors_unchanged", h.tensors_unchanged},
          {"tensors_added", h.tensors_added},
          {"tensors_removed", h.tensors_removed},
          {"tensors", tensors}};
}

}  // namespace

int cmd_info(const arg_list& argv) {
  parsed_args a;
  if (auto e = parse_args(argv, {}, {"--json"}, a)) return usage_error(*e, "info", a.has("--json"));
  bool json = a.has("--json");
  if (a.positional.size() != 1) return usage_error("info needs PATCH", "info", json);
  auto h = core::read_patch_header(a.positional[0]);
  if (!h) return report_error(h.err(), json);
  std::error_code ec;
  std::uint64_t patch_size = std::filesystem::file_size(a.positional[0], ec);
  if (ec) patch_size = 0;  // the header was just read from it; a race at worst
  if (json) {
    print_json(info_json(*h, patch_size));
    return exit_ok;
  }
  std::cout << "format:         " << core::format_name(h->format) << " (container v" << int(h->version) << ", "
            << profile_name(h->profile) << " profile)\n"
            << "source:         " << h->source_size << " bytes, sha256 " << core::to_hex(h->source_sha256) << "\n"
            << "target:         " << h->target_size << " bytes, sha256 " << core::to_hex(h->target_sha256) << "\n"
            << "target version: " << h->target_version << "\n"
            << "created at:     " << utc_time(h->created_at) << "\n"
            << "patch:          " << patch_size << " bytes (body " << h->body_size << ")\n"
            << "compression:    " << compression_name(h->compression) << " level " << int(h->level)
            << (h->neural() ? ", neural" : "") << "\n"
            << "signed:         " << (h->is_signed() ? "yes (Ed25519)" : "no") << "\n"
            << "tensors:        " << h->tensors_modified << " modified, " << h->tensors_unchanged << " unchanged, "
            << h->tensors_added << " added, " << h->tensors_removed << " removed\n";
  if (!h->tensor_stats.empty()) {
    std::cout << "\n  encoding      target bytes   patch bytes  name\n";
    for (const auto& s : h->tensor_stats) {
      char row[96];
      std::snprintf(row, sizeof row, "  %-11s %14llu %13llu  ", core::tensor_encoding_name(s.encoding),
                    static_cast<unsigned long long>(s.target_bytes), static_cast<unsigned long long>(s.patch_bytes));
      std::cout << row << s.name << "\n";
    }
  }
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
    std::cout << "format:        " << core::format_id(fp->format) << "\n"
              << "file_size:     " << fp->file_size << "\n"
              << "header_hash:   " << fp->header_hash << "  (MD5 of the first 64 KiB)\n"
              << "tail_hash:     " << fp->tail_hash << "  (MD5 of the last 4 KiB)\n"
              << "combined_hash: " << fp->combined_hash << "\n"
              << "short_id:      " << fp->short_id() << "\n";
  }
  return exit_ok;
}

}  // namespace mallorn::cli
