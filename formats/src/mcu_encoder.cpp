// create_mcu_patch: the standard container header (profile 1, method lzss, no stats section)
// around an mcu body. Byte layout: docs/patch-format.md, "Profile 1 (mcu)".
#include <ctime>

#include "encode_files.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/formats/mcu_patch.hpp"
#include "mcu_ops.hpp"

namespace mallorn::formats {
namespace {

bool power_of_two(std::uint32_t v) { return v && (v & (v - 1)) == 0; }

unsigned log2_of(std::uint32_t v) {
  unsigned n = 0;
  while (v > 1) v >>= 1, ++n;
  return n;
}

}  // namespace

core::result<patch_stats> create_mcu_patch(std::span<const std::uint8_t> old_image, std::span<const std::uint8_t> new_image,
                                           core::byte_sink& out, const mcu_options& opts) {
  if (opts.level < 1 || opts.level > 22) return core::make_error(core::errc::invalid_argument, "compression level must be 1..22");
  if (opts.block_size && (!power_of_two(opts.block_size) || opts.block_size < 256 || opts.block_size > 16384))
    return core::make_error(core::errc::invalid_argument, "mcu block size must be a power of two in 256..16384");
  if (!power_of_two(opts.old_window) || opts.old_window < 256 || opts.old_window > (1u << 30))
    return core::make_error(core::errc::invalid_argument, "mcu old window must be a power of two in 256..2^30");
  if (old_image.size() > detail::mcu_max_image || new_image.size() > detail::mcu_max_image)
    return core::make_error(core::errc::invalid_argument, "the mcu profile takes images below 32 MiB");

  // Match search effort grows with the level (hash-chain candidates per position).
  unsigned depth = opts.level < 3 ? 4u : opts.level < 9 ? 16u : opts.level < 19 ? 64u : 256u;
  auto ops = detail::plan_mcu_ops(old_image, new_image, opts.old_window, depth, opts.progress);
  // Bigger blocks warm the adaptive models up less often; smaller ones checkpoint more often on
  // devices with small erase blocks. Level 9+ tries them all and keeps the smallest body.
  std::vector<std::uint32_t> sizes;
  if (opts.block_size) sizes = {opts.block_size};
  else if (opts.level >= 9) sizes = {4096, 8192, 16384};
  else sizes = {4096};
  std::vector<std::uint8_t> body;
  for (auto bs : sizes) {
    // The check byte makes every single-byte change of this header detectable: nothing else
    // would notice a different (but valid) window, since the device does not hash the body.
    auto lb = static_cast<std::uint8_t>(log2_of(bs)), lw = static_cast<std::uint8_t>(log2_of(opts.old_window));
    std::vector<std::uint8_t> b{lb, lw, 0, static_cast<std::uint8_t>(0xFF ^ lb ^ lw)};
    auto blocks = detail::encode_mcu_blocks(ops, old_image, new_image, bs);
    b.insert(b.end(), blocks.begin(), blocks.end());
    if (body.empty() || b.size() < body.size()) body = std::move(b);
  }
  if (opts.progress) opts.progress(new_image.size(), new_image.size());

  core::patch_header h;
  h.profile = core::patch_profile::mcu;
  h.format = core::sniff_format(new_image);
  h.compression = core::compression_method::lzss;
  h.level = static_cast<std::uint8_t>(opts.level);
  h.source_size = old_image.size();
  h.target_size = new_image.size();
  h.source_sha256 = core::sha256_of(old_image);
  h.target_sha256 = core::sha256_of(new_image);
  h.target_version = opts.target_version;
  h.created_at = opts.created_at ? opts.created_at : static_cast<std::uint64_t>(std::time(nullptr));
  h.body_size = body.size();
  h.body_sha256 = core::sha256_of(body);
  if (opts.signing_key) MALLORN_TRY(core::sign_header(h, *opts.signing_key));
  auto head = core::encode_header(h);
  MALLORN_TRY(out.write(head));
  MALLORN_TRY(out.write(body));

  return detail::stats_of(h, head.size() + body.size());
}

core::result<patch_stats> create_mcu_patch_file(const std::filesystem::path& old_image, const std::filesystem::path& new_image,
                                                const std::filesystem::path& patch, const mcu_options& opts) {
  return detail::encode_files(old_image, new_image, patch, [&](auto old_bytes, auto new_bytes, core::byte_sink& out) {
    return create_mcu_patch(old_bytes, new_bytes, out, opts);
  });
}

}  // namespace mallorn::formats
