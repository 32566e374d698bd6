// The mcu-profile encoder: old + new image -> a profile-1 patch that mallorn_lite (firmware/)
// applies on a microcontroller in a 1 KiB context. Body layout: docs/patch-format.md, "Profile 1".
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>

#include "mallorn/core/error.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/core/signature.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::formats {

struct mcu_options {
  int level = 9;  // 1..22; from 9 on, every block size is tried and the smallest patch kept
  // Output bytes per range-coder block: a power of two, 256..16384, or 0 to choose (4096 below
  // level 9). The device checkpoints at block boundaries that are erase-block boundaries.
  std::uint32_t block_size = 0;
  // Reads of the old image may go back at most this far behind the furthest byte read so far
  // (a power of two, 256..2^30): devices whose old slot sits behind a small read cache need it small.
  std::uint32_t old_window = 1u << 16;
  std::uint64_t target_version = 0;
  std::uint64_t created_at = 0;  // 0 = now
  std::optional<core::ed25519_private_key> signing_key;
  core::progress_fn progress;    // (new-image bytes matched, new-image size)
};

// Writes the whole patch to `out`. Images up to 32 MiB (the profile's seek range).
core::result<patch_stats> create_mcu_patch(std::span<const std::uint8_t> old_image,
                                           std::span<const std::uint8_t> new_image, core::byte_sink& out,
                                           const mcu_options& opts = {});
// Files in, patch file out (temp + fsync + rename: nothing half-written at `patch`).
core::result<patch_stats> create_mcu_patch_file(const std::filesystem::path& old_image,
                                                const std::filesystem::path& new_image,
                                                const std::filesystem::path& patch, const mcu_options& opts = {});

// Applies an mcu patch with mallorn_lite itself (the device's decoder) on RAM-backed flash slots
// and returns its header once the output matched the target hash. With a key, the header's
// signature is required, as a device configured with that key would. Errors map mallorn_lite's
// codes onto core::errc (source_hash_mismatch, target_hash_mismatch, signature_error, ...).
core::result<core::patch_header> verify_mcu_patch(std::span<const std::uint8_t> old_image,
                                                  std::span<const std::uint8_t> patch,
                                                  const std::optional<core::ed25519_public_key>& public_key = {});
core::result<core::patch_header> verify_mcu_patch_file(const std::filesystem::path& old_image,
                                                       const std::filesystem::path& patch,
                                                       const std::optional<core::ed25519_public_key>& public_key = {});

}  // namespace mallorn::formats
