// Both encoders' file front end: map the two models, encode into an atomic sink, publish the
// patch only when the whole encoding succeeded.
#pragma once
#include <filesystem>

#include "mallorn/core/io.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::formats::detail {

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
