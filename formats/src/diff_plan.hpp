// Internal: the differ's plan — what each byte range of the new model is made from — before it
// is serialised as body frames.
#pragma once
#include <cstdint>
#include <memory>
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

struct plan {
  std::vector<planned_op> ops;
  std::vector<encoded_frame> tensor_frames;
  std::vector<core::tensor_stat> stats;
  std::uint32_t modified = 0, unchanged = 0, added = 0, removed = 0;
};

// Matches tensors and encodes changed ones; everything else becomes gap ops.
plan build_tensor_plan(bytes old_file, const model_layout& old_layout, bytes new_file, const model_layout& new_layout,
                       const diff_options& opts);
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
    // Built on first use: most references never need it (see compress_gap_chunk).
    const suffix_index& index() const {
      if (!index_) index_ = std::make_unique<suffix_index>(bytes_view);
      return *index_;
    }

   private:
    mutable std::unique_ptr<suffix_index> index_;
  };
  const entry& get(const std::vector<core::body::segment>& segments, bytes old_file);

 private:
  std::vector<std::unique_ptr<entry>> entries_;
};

// Serialises a plan: compresses the gap stream against the old model and interleaves frames in
// decoder order. Returns the body bytes.
std::vector<std::uint8_t> encode_body(const plan& p, bytes old_file, const model_layout& old_layout, bytes new_file,
                                      const diff_options& opts, gap_reference_cache& cache);

}  // namespace mallorn::formats::detail
