// Creates a patch in memory and applies it through the streaming applier in chunks of a given
// size; the shared core of the differ's round-trip tests.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::test {

// Applies `patch` to `old_model` feeding `chunk` bytes at a time (0 = random sizes).
inline core::result<std::vector<std::uint8_t>> apply_in_chunks(std::span<const std::uint8_t> old_model,
                                                               std::span<const std::uint8_t> patch, std::size_t chunk,
                                                               const core::apply_options& opts = {}) {
  core::memory_source src(old_model);
  core::memory_sink out;
  core::patch_applier applier(src, out, opts);
  std::mt19937 rng(static_cast<unsigned>(patch.size()));
  std::size_t at = 0;
  while (at < patch.size()) {
    std::size_t n = chunk ? chunk : 1 + rng() % 4096;
    n = std::min(n, patch.size() - at);
    auto r = applier.feed(patch.subspan(at, n));
    if (!r) return r.err();
    at += n;
  }
  MALLORN_TRY(applier.finish());
  return std::move(out.data);
}

// A file's bytes; a test failure (and no bytes) when it cannot be read.
inline std::vector<std::uint8_t> read_or_fail(const std::filesystem::path& p) {
  auto r = core::read_file(p);
  EXPECT_TRUE(r.ok()) << p;
  return r.ok() ? *r : std::vector<std::uint8_t>{};
}

inline std::vector<std::uint8_t> make_patch(std::span<const std::uint8_t> old_model,
                                            std::span<const std::uint8_t> new_model,
                                            const formats::diff_options& opts = {}) {
  core::memory_sink sink;
  auto st = formats::create_patch(old_model, new_model, sink, opts);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().what());
  return std::move(sink.data);
}

}  // namespace mallorn::test
