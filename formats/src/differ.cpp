#include "mallorn/formats/differ.hpp"

#include <ctime>

#include "diff_plan.hpp"
#include "encode_files.hpp"
#include "mallorn/core/hash.hpp"

namespace mallorn::formats {
namespace {

// Up to this size the differ also tries a pure binary delta and keeps whichever body is smaller,
// so a model-aware patch is never worse than the generic one.
constexpr std::uint64_t try_both_limit = 256ull << 20;

}  // namespace

core::result<patch_stats> create_patch(std::span<const std::uint8_t> old_model, std::span<const std::uint8_t> new_model,
                                       core::byte_sink& out, const diff_options& opts) {
  if (opts.level < 1 || opts.level > 22)
    return core::make_error(core::errc::invalid_argument, "compression level must be 1..22");
  auto ol = parse_model(old_model);
  auto nl = parse_model(new_model);
  if (!ol) return ol.err();
  if (!nl) return nl.err();

  detail::plan tensor_plan;
  detail::gap_reference_cache references;
  std::vector<std::uint8_t> body;
  bool have_tensor_body = false;
  if (opts.tensor_aware && !nl->tensors.empty()) {
    tensor_plan = detail::build_tensor_plan(old_model, *ol, new_model, *nl, opts);
    body = detail::encode_body(tensor_plan, old_model, *ol, new_model, opts, references);
    have_tensor_body = true;
  }
  bool generic_chosen = false;
  if (!have_tensor_body || (old_model.size() <= try_both_limit && new_model.size() <= try_both_limit)) {
    auto generic = detail::encode_body(detail::build_generic_plan(new_model), old_model, *ol, new_model, opts, references);
    if (!have_tensor_body || generic.size() < body.size()) {
      body = std::move(generic);
      generic_chosen = true;
    }
  }

  core::patch_header h;
  h.format = nl->format;
  h.flags = opts.neural ? core::header_flag::neural : 0;
  h.compression = core::compression_method::zstd;
  h.level = static_cast<std::uint8_t>(opts.level);
  h.source_size = old_model.size();
  h.target_size = new_model.size();
  h.source_sha256 = core::sha256_of(old_model);
  h.target_sha256 = core::sha256_of(new_model);
  h.target_version = opts.target_version;
  h.created_at = opts.created_at ? opts.created_at : static_cast<std::uint64_t>(std::time(nullptr));
  h.body_size = body.size();
  h.body_sha256 = core::sha256_of(body);
  h.tensors_modified = tensor_plan.modified;
  h.tensors_unchanged = tensor_plan.unchanged;
  h.tensors_added = tensor_plan.added;
  h.tensors_removed = tensor_plan.removed;
  // Per-tensor entries describe tensor frames; a pure binary delta has none.
  if (!generic_chosen) h.tensor_stats = std::move(tensor_plan.stats);
  if (opts.signing_key) MALLORN_TRY(core::sign_header(h, *opts.signing_key));

  auto head = core::encode_header(h);
  MALLORN_TRY(out.write(head));
  MALLORN_TRY(out.write(body));

  return detail::stats_of(h, head.size() + body.size());
}

core::result<patch_stats> create_patch_file(const std::filesystem::path& old_model, const std::filesystem::path& new_model,
                                            const std::filesystem::path& patch, const diff_options& opts) {
  return detail::encode_files(old_model, new_model, patch, [&](auto old_bytes, auto new_bytes, core::byte_sink& out) {
    return create_patch(old_bytes, new_bytes, out, opts);
  });
}

}  // namespace mallorn::formats
