// How much of download.part is known to be on disk. Bytes written during this boot are, even if
// the agent was killed (the page cache outlives the process); after a power cut only what was
// fsynced is — the rest of the file may read back as zeros or stale blocks. So every fsync of the
// download records (boot id, bytes synced) next to it, and a resume after a reboot first cuts the
// file back to what was synced.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "mallorn/core/error.hpp"

namespace mallorn::agent {

struct download_checkpoint {
  std::string boot_id;
  std::uint64_t synced = 0;
};

// /proc/sys/kernel/random/boot_id ("" when unavailable: then nothing unsynced is trusted).
std::string current_boot_id();
std::filesystem::path checkpoint_path(const std::filesystem::path& part);
std::optional<download_checkpoint> load_checkpoint(const std::filesystem::path& part);
core::result<void> save_checkpoint(const std::filesystem::path& part, std::uint64_t synced);
// The bytes of `part` (whose size is `size`) that can be trusted now.
std::uint64_t trusted_prefix(const std::filesystem::path& part, std::uint64_t size);

}  // namespace mallorn::agent
