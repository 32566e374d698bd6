// The operations behind the Python API, in plain C++: no Python object is touched here, so the
// binding layer (py_module.cpp) can run every one of them with the GIL released.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "mallorn/core/error.hpp"
#include "mallorn/core/fingerprint.hpp"
#include "mallorn/core/hash.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/core/patch_header.hpp"
#include "mallorn/core/signature.hpp"
#include "mallorn/formats/differ.hpp"

namespace mallorn::python {

// A model or patch given either as a file path or as bytes owned by the caller (a Python bytes
// object that outlives the call).
struct input {
  std::optional<std::filesystem::path> path;
  std::span<const std::uint8_t> bytes;

  static input from_path(std::filesystem::path p) { return {std::move(p), {}}; }
  static input from_bytes(std::span<const std::uint8_t> b) { return {std::nullopt, b}; }
};

// Thrown by the binding layer to raise the matching mallorn.MallornError subtype.
struct raised_error {
  core::error err;
};

// old + new -> patch file at `out` (atomic: nothing appears there on failure).
core::result<formats::patch_stats> create_patch(const input& source, const input& target,
                                                const std::filesystem::path& out, const formats::diff_options& opts);

// What an apply or verify run established, also when it failed: which checks passed follows from
// the order the applier checks in (header, signature, version, source hash, body, target hash).
struct apply_outcome {
  std::optional<core::error> err;
  std::optional<core::patch_header> header;  // parsed header, when the patch has a readable one
  std::optional<core::sha256_digest> actual_target;  // known once the whole body was decoded
  std::uint64_t bytes_written = 0;
};

// Applies `patch` to `source`; with `out`, the model is written there atomically after its hash
// matched, without it the output is only hashed (verify).
apply_outcome apply_patch(const input& source, const input& patch, const std::optional<std::filesystem::path>& out,
                          const core::apply_options& opts);

struct header_info {
  core::patch_header header;
  std::uint64_t patch_size = 0;
};
core::result<header_info> read_header(const input& patch);

// Signs (or re-signs) a patch and writes it to `out` atomically; returns the signed size.
core::result<std::uint64_t> sign_patch(const input& patch, const core::ed25519_private_key& key,
                                       const std::filesystem::path& out);

}  // namespace mallorn::python
