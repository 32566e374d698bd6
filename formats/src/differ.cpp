#include "mallorn/formats/differ.hpp"

#include "diff_plan.hpp"
#include "encode_files.hpp"
#include "mallorn/core/hash.hpp"

namespace mallorn::formats {
namespace {

// Up to this size the differ also tries a pure binary delta and keeps whichever body is smaller,
// so a model-aware patch is never worse than the generic one.
constexpr std::uint64_t try_both_limit = 256ull << 20;

// Hashes `b` a piece at a time, releasing each piece once hashed.
core::sha256_digest hash_releasing(detail::bytes b, const detail::page_releaser& release) {
  constexpr std::size_t piece = 16u << 20;
  core::sha256 h;
  for (std::size_t at = 0; at < b.size(); at += piece) {
    auto part = b.subspan(at, std::min(piece, b.size() - at));
    h.update(part);
    release(part);
  }
  return h.finish();
}

core::result<patch_stats> diff(std::span<const std::uint8_t> old_model, std::span<const std::uint8_t> new_model,
                               core::byte_sink& out, const diff_options& opts, const detail::page_releaser& release) {
  if (opts.level < 1 || opts.level > 22)
    return core::make_error(core::errc::invalid_argument, "compression level must be 1..22");
  auto ol = parse_model(old_model);
  auto nl = parse_model(new_model);
  if (!ol) return ol.err();
  if (!nl) return nl.err();

  detail::plan tensor_plan;
  bool have_tensor_body = opts.tensor_aware && !nl->tensors.empty();
  if (have_tensor_body) tensor_plan = detail::build_tensor_plan(old_model, *ol, new_model, *nl, opts, release);
  bool try_generic = !have_tensor_body || (old_model.size() <= try_both_limit && new_model.size() <= try_both_limit);

  // Independent tasks, any order, any thread count: the generic body (the longest, so first), the
  // two whole-file hashes, then every tensor chunk. Each writes only its own result.
  core::patch_header h;
  std::vector<std::uint8_t> generic;
  std::size_t jobs = tensor_plan.jobs.size();
  detail::run_parallel(3 + jobs, detail::worker_count(opts.threads), [&](std::size_t task) {
    if (task == 0) {
      if (!try_generic) return;
      detail::gap_reference_cache references;  // per body: the cache is not shared across threads
      generic = detail::encode_body(detail::build_generic_plan(new_model), old_model, *ol, new_model, opts, references);
    } else if (task == 1) {
      h.source_sha256 = hash_releasing(old_model, release);
    } else if (task == 2) {
      h.target_sha256 = hash_releasing(new_model, release);
    } else {
      detail::encode_tensor_job(tensor_plan, task - 3, old_model, *nl, new_model, opts, release);
    }
  });
  std::vector<std::uint8_t> body;
  if (have_tensor_body) {
    detail::finish_tensor_plan(tensor_plan);
    detail::gap_reference_cache references;
    body = detail::encode_body(tensor_plan, old_model, *ol, new_model, opts, references);
  }
  bool generic_chosen = false;
  if (try_generic && (!have_tensor_body || generic.size() < body.size())) {
    body = std::move(generic);
    generic_chosen = true;
  }

  h.version = core::compact_container_version;
  h.format = nl->format;
  h.flags = opts.neural ? core::header_flag::neural : 0;
  h.compression = core::compression_method::zstd;
  h.level = static_cast<std::uint8_t>(opts.level);
  h.source_size = old_model.size();
  h.target_size = new_model.size();
  h.target_version = opts.target_version;
  h.created_at = opts.created_at;  // recorded only when asked for: bytes a tiny patch need not carry
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

}  // namespace

core::result<patch_stats> create_patch(std::span<const std::uint8_t> old_model, std::span<const std::uint8_t> new_model,
                                       core::byte_sink& out, const diff_options& opts) {
  return diff(old_model, new_model, out, opts, detail::page_releaser(false));  // the caller's memory: never released
}

core::result<patch_stats> create_patch_file(const std::filesystem::path& old_model, const std::filesystem::path& new_model,
                                            const std::filesystem::path& patch, const diff_options& opts) {
  return detail::encode_files(old_model, new_model, patch, [&](auto old_bytes, auto new_bytes, core::byte_sink& out) {
    // Both models are read-only file mappings here: pages the differ is done with can go.
    return diff(old_bytes, new_bytes, out, opts, detail::page_releaser(true));
  });
}

}  // namespace mallorn::formats
