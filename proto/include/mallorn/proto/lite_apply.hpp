// The device side of an mcu-profile update, as the firmware does it: mallorn_lite (firmware/)
// streams the patch from the download area, reading the old image from one flash slot and writing
// the new image into the other (flash_sim files beside `new_model`: <new_model>.slot-a / .slot-b).
// An apply cut by a power loss resumes from mallorn_lite's journal on the next call.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/flash_sim.hpp"

namespace mallorn::proto {

// Returns the SHA-256 (hex) of the new image, which is also written to `new_model` (atomically)
// for the host side of the simulation.
core::result<std::string> lite_apply(flash_sim& download, std::uint64_t patch_size, const std::filesystem::path& old_model,
                                     const std::filesystem::path& new_model, std::uint64_t target_size);

}  // namespace mallorn::proto
