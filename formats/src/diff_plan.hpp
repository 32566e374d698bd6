// Internal: the differ's plan — what each byte range of the new model is made from — before it
// is serialised as body frames.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "approx_delta.hpp"

#include "mallorn/core/body_format.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/formats/differ.hpp"
#include "mallorn/formats/model.hpp"

namespace mallorn::formats::detail {

using bytes = std::span<const std::uint8_t>;

struct planned_op {
  core::body::op_kind kind;
  std::uint64_t target_offset;
  std::uint64_t length;
  std::uint64_t source_offset = 0;  // copy
  std::size_t frame = 0;            // tensor: index into plan::tensor_frames
};

struct encoded_frame {
  core::body::data_frame meta;  // meta.payload points into `payload`
  std::vector<std::uint8_t> payload;
};

// One chunk of a changed tensor to encode: independent of every other job.
struct tensor_job {
  std::size_t tensor;               // index into the new layout's tensors
  const tensor_info* source;        // matched old tensor, or null
  std::uint64_t offset, length;     // chunk within the tensor
  std::size_t frame;                // slot in plan::tensor_frames
  std::size_t stat;                 // entry in plan::stats
  core::tensor_encoding encoding = core::tensor_encoding::literal;  // set by encode_tensor_job
};

struct plan {
  std::vector<planned_op> ops;
  std::vector<encoded_frame> tensor_frames;
  std::vector<core::tensor_stat> stats;
  std::vector<tensor_job> jobs;  // tensor frames still to encode
  std::uint32_t modified = 0, unchanged = 0, added = 0, removed = 0;
};

// Drops pages of a read-only file mapping from this process once the differ is done with them
// (madvise MADV_DONTNEED; they come back from the page cache if touched again), so diff memory
// stays O(chunk x threads) whatever the model size. Disabled for caller-owned buffers.
class page_releaser {
 public:
  explicit page_releaser(bool enabled) : enabled_(enabled) {}
  void operator()(bytes b) const;

 private:
  bool enabled_;
};

// Worker threads for `requested` (0 = every core).
unsigned worker_count(unsigned requested);
// Runs task(0..n-1) on up to `threads` threads (the caller's included), each index exactly once;
// rethrows the first exception a task threw.
void run_parallel(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& task);

// Matches tensors and plans changed ones as jobs (not yet encoded); everything else becomes gap ops.
plan build_tensor_plan(bytes old_file, const model_layout& old_layout, bytes new_file, const model_layout& new_layout,
                       const diff_options& opts, const page_releaser& release);
// Encodes job `job` of `p` into its frame slot. Jobs may run concurrently (distinct slots).
void encode_tensor_job(plan& p, std::size_t job, bytes old_file, const model_layout& new_layout, bytes new_file,
                       const diff_options& opts, const page_releaser& release);
// After every job ran: per-tensor stats, in file order.
void finish_tensor_plan(plan& p);
// The whole new file as one gap (pure binary delta).
plan build_generic_plan(bytes new_file);

// Reference bytes of gap chunks and their suffix arrays, built once per distinct reference and
// shared by every chunk and by both plans.
class gap_reference_cache {
 public:
  struct entry {
    std::vector<core::body::segment> segments;
    std::vector<std::uint8_t> joined;  // empty when the reference is one contiguous segment
    bytes bytes_view;
    // Built on first use (by whichever thread needs it first): most references never need it
    // (see compress_gap_chunk).
    const suffix_index& index() const {
      std::call_once(index_once_, [this] { index_ = std::make_unique<suffix_index>(bytes_view); });
      return *index_;
    }

   private:
    mutable std::once_flag index_once_;
    mutable std::unique_ptr<suffix_index> index_;
  };
  // Thread-safe; entries live as long as the cache.
  const entry& get(const std::vector<core::body::segment>& segments, bytes old_file);

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<entry>> entries_;
};

// One piece of a plan's gap stream (at most max_chunk bytes), compressed on its own: chunks of
// both plans are independent tasks for the worker threads.
struct gap_chunk {
  std::vector<core::body::segment> pieces;  // target byte ranges, in order
  std::uint64_t size = 0;
  std::uint64_t first_target = 0;  // target offset of its first byte
  encoded_frame frame;
};
// Cuts the plan's gap ops into chunks (no bytes are copied yet).
std::vector<gap_chunk> cut_gap_stream(const plan& p);
// Compresses one chunk against the old model (reference chosen by position); chunks may be
// compressed concurrently with a shared cache. `new_index_vectors` (the new layout's, file
// offsets) are offered to the index_bitmap transform where they lie inside the chunk.
void compress_gap_chunk(gap_chunk& c, bytes old_file, const model_layout& old_layout, bytes new_file,
                        std::span<const core::body::index_vector> new_index_vectors, int level,
                        gap_reference_cache& cache, const page_releaser& release);

struct encoded_body {
  std::vector<std::uint8_t> bytes;
  bool single_frame = false;  // `bytes` is one gap data frame's payload (container version 3)
};
// Serialises a plan whose tensor jobs and gap chunks are all encoded: frames in decoder order, or
// the single-frame form when the whole target is one gap chunk.
encoded_body assemble_body(const plan& p, const std::vector<gap_chunk>& chunks, const diff_options& opts);

}  // namespace mallorn::formats::detail
