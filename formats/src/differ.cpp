#include "mallorn/formats/differ.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>

#include "diff_plan.hpp"
#include "encode_files.hpp"
#include "mallorn/core/hash.hpp"

namespace mallorn::formats {
namespace {

// Up to this size the differ also tries a pure binary delta and keeps whichever body is smaller,
// so a model-aware patch is never worse than the generic one.
constexpr std::uint64_t try_both_limit = 256ull << 20;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

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

  detail::plan tensor_plan, generic_plan;
  bool have_tensor_body = opts.tensor_aware && !nl->tensors.empty();
  if (have_tensor_body) tensor_plan = detail::build_tensor_plan(old_model, *ol, new_model, *nl, opts, release);
  bool try_generic = !have_tensor_body || (old_model.size() <= try_both_limit && new_model.size() <= try_both_limit);
  if (try_generic) generic_plan = detail::build_generic_plan(new_model);
  auto tensor_chunks = detail::cut_gap_stream(tensor_plan), generic_chunks = detail::cut_gap_stream(generic_plan);

  // Independent tasks, any order, any thread count, each writing only its own result: every gap
  // chunk of both bodies, every tensor chunk, the two whole-file hashes. Started largest first, so
  // that no long task starts last while the other threads idle.
  core::patch_header h;
  struct task {
    std::uint64_t cost;  // bytes it reads, a proxy for its time
    std::function<void()> run;
  };
  std::vector<task> tasks;
  detail::gap_reference_cache references;  // shared: both bodies' chunks mostly use the same references
  for (auto* chunks : {&generic_chunks, &tensor_chunks})
    for (auto& c : *chunks)
      tasks.push_back({c.size, [&, chunk = &c] {
                         detail::compress_gap_chunk(*chunk, old_model, *ol, new_model, nl->index_vectors, opts.level,
                                                    references, release);
                       }});
  for (std::size_t j = 0; j < tensor_plan.jobs.size(); ++j)
    tasks.push_back({tensor_plan.jobs[j].length, [&, j] {
                       detail::encode_tensor_job(tensor_plan, j, old_model, *nl, new_model, opts, release);
                     }});
  tasks.push_back({0, [&] { h.source_sha256 = hash_releasing(old_model, release); }});
  tasks.push_back({0, [&] { h.target_sha256 = hash_releasing(new_model, release); }});
  std::stable_sort(tasks.begin(), tasks.end(), [](const task& a, const task& b) { return a.cost > b.cost; });
  // MALLORN_DIFF_TASK_TIMES=1: each task's thread CPU time on stderr, so that the parallel schedule
  // can be judged on a shared machine, where wall time measures the neighbours.
  static const bool trace = std::getenv("MALLORN_DIFF_TASK_TIMES") != nullptr;
  detail::run_parallel(tasks.size(), detail::worker_count(opts.threads), [&](std::size_t i) {
    double start = trace ? thread_cpu_seconds() : 0;
    tasks[i].run();
    if (trace) std::fprintf(stderr, "diff task\t%llu\t%.3f\n", static_cast<unsigned long long>(tasks[i].cost),
                            thread_cpu_seconds() - start);
  });

  detail::encoded_body body;
  if (have_tensor_body) {
    detail::finish_tensor_plan(tensor_plan);
    body = detail::assemble_body(tensor_plan, tensor_chunks, opts);
  }
  bool generic_chosen = false;
  if (try_generic) {
    auto generic = detail::assemble_body(generic_plan, generic_chunks, opts);
    if (!have_tensor_body || generic.bytes.size() < body.bytes.size()) {
      body = std::move(generic);
      generic_chosen = true;
    }
  }

  h.version = body.single_frame ? core::single_frame_container_version : core::compact_container_version;
  h.format = nl->format;
  h.flags = opts.neural ? core::header_flag::neural : 0;
  h.compression = core::compression_method::zstd;
  h.level = static_cast<std::uint8_t>(opts.level);
  h.source_size = old_model.size();
  h.target_size = new_model.size();
  h.target_version = opts.target_version;
  h.created_at = opts.created_at;  // recorded only when asked for: bytes a tiny patch need not carry
  h.body_size = body.bytes.size();
  h.body_sha256 = core::sha256_of(body.bytes);
  h.tensors_modified = tensor_plan.modified;
  h.tensors_unchanged = tensor_plan.unchanged;
  h.tensors_added = tensor_plan.added;
  h.tensors_removed = tensor_plan.removed;
  // Per-tensor entries describe tensor frames; a pure binary delta has none.
  if (!generic_chosen) h.tensor_stats = std::move(tensor_plan.stats);
  if (opts.signing_key) MALLORN_TRY(core::sign_header(h, *opts.signing_key));

  auto head = core::encode_header(h);
  MALLORN_TRY(out.write(head));
  MALLORN_TRY(out.write(body.bytes));

  return detail::stats_of(h, head.size() + body.bytes.size());
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
