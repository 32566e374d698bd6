// Where a device puts the patch bytes it receives. The transport hands blocks over in any order,
// each once; begin() is called for every new offer and discards an earlier patch.
//
// This implementation (flash_download) keeps the patch in a simulated flash download area, with a
// trailer recording which blocks are in (a download cut by a power loss resumes after the
// reboot), and once complete checks its size and SHA-256 against the offer and applies it: an
// mcu-profile patch with mallorn_lite slot to slot (lite_apply.hpp), a standard one with the core.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "mallorn/core/error.hpp"
#include "mallorn/proto/control_messages.hpp"
#include "mallorn/proto/flash_sim.hpp"

namespace mallorn::proto {

class patch_consumer {
 public:
  virtual ~patch_consumer() = default;
  // io_error / invalid_argument (e.g. the patch does not fit) refuse the offer.
  virtual core::result<void> begin(const offer_msg& offer) = 0;
  virtual core::result<void> write(std::uint64_t offset, std::span<const std::uint8_t> bytes) = 0;
  // All bytes are in: verify and install. Returns the SHA-256 (hex) of the installed model.
  virtual core::result<std::string> finish() = 0;
  // After begin(): blocks of this offer already held from an earlier boot (not asked for again).
  virtual std::vector<std::uint32_t> held_blocks() const { return {}; }
};

class flash_download final : public patch_consumer {
 public:
  // The patch goes to `flash`; finish() applies it to `old_model` and writes `new_model`
  // (which appears only once its hash matched).
  flash_download(flash_sim& flash, std::filesystem::path old_model, std::filesystem::path new_model);
  core::result<void> begin(const offer_msg& offer) override;
  core::result<void> write(std::uint64_t offset, std::span<const std::uint8_t> bytes) override;
  core::result<std::string> finish() override;
  std::vector<std::uint32_t> held_blocks() const override { return held_; }

 private:
  // The download trailer in the last sectors of the flash: which patch, and one byte per block
  // (0xFF missing, 0x00 written), so a download cut by a power loss resumes after the reboot.
  std::uint64_t trailer_offset() const;
  core::result<void> start_fresh();
  core::result<bool> resume();
  core::result<void> write_trailer(const std::vector<std::uint8_t>& bitmap);
  std::uint32_t blocks() const;

  flash_sim& flash_;
  std::vector<std::uint32_t> held_;
  std::filesystem::path old_model_, new_model_;
  offer_msg offer_;
};

}  // namespace mallorn::proto
