// The tensor-aware differ: old + new model -> patch (header + body).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>

#include "mallorn/core/error.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/core/signature.hpp"

namespace mallorn::formats {

struct diff_options {
  int level = 3;          // zstd level 1..22
  bool neural = false;    // also try byte-planed (ZipNN-style) encodings of weights
  bool tensor_aware = true;  // false: generic binary delta of the whole file only
  unsigned threads = 0;   // worker threads for independent tensor chunks (0 = every core); output is the same for any value
  std::uint64_t target_version = 0;
  std::uint64_t created_at = 0;  // unix seconds written to the header; 0 = none (compact header)
  std::optional<core::ed25519_private_key> signing_key;
  core::progress_fn progress;    // (target bytes planned, target size)
};

struct patch_stats {
  core::model_format format = core::model_format::raw;
  std::uint64_t source_size = 0;
  std::uint64_t target_size = 0;
  std::uint64_t patch_size = 0;
  double compression_ratio = 0;  // target_size / patch_size
  std::uint32_t tensors_modified = 0;
  std::uint32_t tensors_unchanged = 0;
  std::uint32_t tensors_added = 0;
  std::uint32_t tensors_removed = 0;
};

// Writes the whole patch to `out`.
core::result<patch_stats> create_patch(std::span<const std::uint8_t> old_model,
                                       std::span<const std::uint8_t> new_model, core::byte_sink& out,
                                       const diff_options& opts = {});
// Files in, patch file out (temp + fsync + rename).
core::result<patch_stats> create_patch_file(const std::filesystem::path& old_model,
                                            const std::filesystem::path& new_model,
                                            const std::filesystem::path& patch,
                                            const diff_options& opts = {});

}  // namespace mallorn::formats
