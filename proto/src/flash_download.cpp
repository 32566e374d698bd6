#include "mallorn/proto/patch_consumer.hpp"

#include <vector>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/proto/lite_apply.hpp"

namespace mallorn::proto {

flash_download::flash_download(flash_sim& flash, std::filesystem::path old_model, std::filesystem::path new_model)
    : flash_(flash), old_model_(std::move(old_model)), new_model_(std::move(new_model)) {}

core::result<void> flash_download::begin(const offer_msg& offer) {
  if (offer.patch_size > flash_.size())
    return core::make_error(core::errc::invalid_argument, "patch of " + std::to_string(offer.patch_size) +
                                                              " bytes does not fit the " + std::to_string(flash_.size()) +
                                                              "-byte download area");
  offer_ = offer;
  // Erase what the patch will cover up front, as a bootloader erases a slot: blocks then arrive
  // in any order and each lands on erased flash.
  const std::uint64_t sectors = (offer.patch_size + flash_.sector_size() - 1) / flash_.sector_size();
  for (std::uint64_t s = 0; s < sectors; ++s) MALLORN_TRY(flash_.erase_sector(s));
  return {};
}

core::result<void> flash_download::write(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  if (offset + bytes.size() > offer_.patch_size)
    return core::make_error(core::errc::invalid_argument, "block past the end of the offered patch");
  return flash_.write(offset, bytes);
}

core::result<std::string> flash_download::finish() {
  std::vector<std::uint8_t> patch(offer_.patch_size);
  MALLORN_TRY(flash_.read(0, patch));
  const auto digest = core::to_hex(core::sha256_of(patch));
  if (digest != offer_.patch_sha256)
    return core::make_error(core::errc::invalid_patch, "downloaded patch has sha256 " + digest + ", the offer said " +
                                                           offer_.patch_sha256);
  // An mcu-profile patch goes through the firmware's own applier, slot to slot; a standard one
  // (a device that asked for it) through the C++ core.
  auto probe = core::parse_header(patch);
  if (probe && probe->header && probe->header->profile == core::patch_profile::mcu) {
    auto target = lite_apply(flash_, offer_.patch_size, old_model_, new_model_, probe->header->target_size);
    if (!target) return target.err();
    if (!offer_.target_sha256.empty() && *target != offer_.target_sha256)
      return core::make_error(core::errc::target_hash_mismatch, "new model has sha256 " + *target + ", the offer said " +
                                                                    offer_.target_sha256);
    return target;
  }
  // The core applier reads a patch file; stage the verified bytes next to the output.
  const auto staged = new_model_.parent_path() / (new_model_.filename().string() + ".patch");
  MALLORN_TRY(core::write_file_atomic(staged, patch));
  auto applied = core::apply_patch_file(old_model_, staged, new_model_);
  std::error_code ec;
  std::filesystem::remove(staged, ec);
  if (!applied) return applied.err();
  const auto target = core::to_hex(applied->actual_target);
  if (!offer_.target_sha256.empty() && target != offer_.target_sha256) {
    std::filesystem::remove(new_model_, ec);
    return core::make_error(core::errc::target_hash_mismatch, "new model has sha256 " + target + ", the offer said " +
                                                                  offer_.target_sha256);
  }
  return target;
}

}  // namespace mallorn::proto
