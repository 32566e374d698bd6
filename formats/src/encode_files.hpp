// Both encoders' file front end: map the two models, encode into an atomic sink, publish the
// patch only when the whole encoding succeeded.
#pragma once
#include <filesystem>

#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::formats::detail {

// What both encoders report about the patch they wrote (the mcu header's tensor counts are 0).
inline patch_stats stats_of(const core::patch_header& h, std::uint64_t patch_size) {
  patch_stats st;
  st.format = h.format;
  st.source_size = h.source_size;
  st.target_size = h.target_size;
  st.patch_size = patch_size;
  st.compression_ratio = patch_size ? static_cast<double>(st.target_size) / static_cast<double>(patch_size) : 0;
  st.tensors_modified = h.tensors_modified;
  st.tensors_unchanged = h.tensors_unchanged;
  st.tensors_added = h.tensors_added;
  st.tensors_removed = h.tensors_removed;
  return st;
}

// encode(old bytes, new bytes, sink) -> result<patch_stats>
template <class Encode>
core::result<patch_stats> encode_files(const std::filesystem::path& old_model, const std::filesystem::path& new_model,
                                       const std::filesystem::path& patch, Encode&& encode) {
  auto o = core::mapped_file::open(old_model);
  if (!o) return o.err();
  auto n = core::mapped_file::open(new_model);
  if (!n) return n.err();
  auto sink = core::atomic_file_sink::create(patch);
  if (!sink) return sink.err();
  core::result<patch_stats> st = encode(o->bytes(), n->bytes(), **sink);
  if (!st) {
    (*sink)->discard();
    return st.err();
  }
  MALLORN_TRY((*sink)->commit());
  return st;
}

}  // namespace mallorn::formats::detail
