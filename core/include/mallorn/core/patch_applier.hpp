// Streaming patch application: feed the patch in chunks of any size, in one forward pass, with
// memory bounded independently of model size (see docs/patch-format.md for the limits).
// Output is identical however the input is split.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "mallorn/core/error.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_header.hpp"

namespace mallorn::core {

using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct apply_options {
  // When set, unsigned patches and bad signatures are refused (signature_error).
  std::optional<ed25519_public_key> public_key;
  // Hash the whole old model and compare to the header before writing anything.
  bool verify_source = true;
  // Refuse a target_version below this (downgrade protection); nullopt = no check.
  std::optional<std::uint64_t> min_target_version;
  // Called as target bytes are produced.
  progress_fn progress;
};

enum class apply_status { need_more, done };

class patch_applier {
 public:
  patch_applier(byte_source& old_model, byte_sink& out, apply_options opts = {});
  ~patch_applier();
  patch_applier(const patch_applier&) = delete;
  patch_applier& operator=(const patch_applier&) = delete;

  // Consumes all of `bytes`. need_more until the last body byte; bytes after the end of the
  // patch are an error. The first error is sticky: later calls return it again.
  result<apply_status> feed(std::span<const std::uint8_t> bytes);
  // Call after feed() returned done: checks body and target SHA-256. target_hash_mismatch if the
  // output is not the model the header promised.
  result<void> finish();

  // Available once the header has been read and checked (signature, source, version).
  const patch_header* header() const;
  std::uint64_t bytes_written() const;
  // SHA-256 of the output; valid after finish() succeeded (or failed with target_hash_mismatch).
  const sha256_digest& actual_target() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Feeds all of `patch` to `applier` in blocks, then finish(). The applier is left as it ended, so a
// caller can still ask it what was established (header(), actual_target()) after a failure.
result<void> feed_all_and_finish(patch_applier& applier, byte_source& patch);

struct apply_report {
  patch_header header;
  sha256_digest actual_target{};
};

// old + patch file -> out file; out appears (atomically) only after the target hash matched.
result<apply_report> apply_patch_file(const std::filesystem::path& old_model,
                                      const std::filesystem::path& patch,
                                      const std::filesystem::path& out, const apply_options& opts = {});
// Applies into a hashing sink: proves the patch turns this old model into its target.
result<apply_report> verify_patch_file(const std::filesystem::path& old_model,
                                       const std::filesystem::path& patch,
                                       const apply_options& opts = {});

// Reads just the header of a patch file.
result<patch_header> read_patch_header(const std::filesystem::path& patch);
// Returns the patch with a (new) signature; the body is unchanged.
result<std::vector<std::uint8_t>> sign_patch(std::span<const std::uint8_t> patch, const ed25519_private_key& key);

}  // namespace mallorn::core
