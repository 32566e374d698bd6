#include "mallorn/proto/patch_consumer.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"
#include "mallorn/core/patch_applier.hpp"
#include "mallorn/proto/lite_apply.hpp"

namespace mallorn::proto {

flash_download::flash_download(flash_sim& flash, std::filesystem::path old_model, std::filesystem::path new_model)
    : flash_(flash), old_model_(std::move(old_model)), new_model_(std::move(new_model)) {}

namespace {

constexpr std::uint8_t trailer_magic[4] = {'M', 'L', 'D', 'L'};
constexpr std::size_t trailer_header = 64;  // magic, patch size, block size, patch SHA-256 (hex->raw)

std::vector<std::uint8_t> header_of(const offer_msg& o) {
  std::vector<std::uint8_t> h(trailer_header, 0xff);
  std::memcpy(h.data(), trailer_magic, 4);
  for (int i = 0; i < 8; ++i) h[4 + i] = static_cast<std::uint8_t>(o.patch_size >> (8 * i));
  for (int i = 0; i < 4; ++i) h[12 + i] = static_cast<std::uint8_t>(o.block_size >> (8 * i));
  auto nibble = [](char c) -> int {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0;
  };
  for (std::size_t i = 0; i < 32 && 2 * i + 1 < o.patch_sha256.size(); ++i)
    h[16 + i] = static_cast<std::uint8_t>(nibble(o.patch_sha256[2 * i]) << 4 | nibble(o.patch_sha256[2 * i + 1]));
  return h;
}

}  // namespace

std::uint32_t flash_download::blocks() const {
  return offer_.block_size ? static_cast<std::uint32_t>((offer_.patch_size + offer_.block_size - 1) / offer_.block_size) : 0;
}

std::uint64_t flash_download::trailer_offset() const {
  const std::uint64_t sector = flash_.sector_size();
  const std::uint64_t sectors = (trailer_header + blocks() + sector - 1) / sector;
  return flash_.size() - sectors * sector;
}

core::result<void> flash_download::write_trailer(const std::vector<std::uint8_t>& bitmap) {
  for (std::uint64_t at = trailer_offset(); at < flash_.size(); at += flash_.sector_size())
    MALLORN_TRY(flash_.erase_sector(at / flash_.sector_size()));
  auto bytes = header_of(offer_);
  bytes.insert(bytes.end(), bitmap.begin(), bitmap.end());
  return flash_.write(trailer_offset(), bytes);
}

core::result<void> flash_download::start_fresh() {
  // Erase what the patch will cover up front, as a bootloader erases a slot: blocks then arrive
  // in any order and each lands on erased flash.
  const std::uint64_t sectors = (offer_.patch_size + flash_.sector_size() - 1) / flash_.sector_size();
  for (std::uint64_t s = 0; s < sectors; ++s) MALLORN_TRY(flash_.erase_sector(s));
  return write_trailer(std::vector<std::uint8_t>(blocks(), 0xff));
}

// The same patch was being downloaded before the reboot: keep the blocks whose bitmap byte was
// written (it is written after the block), and erase the sectors a cut left half-programmed.
core::result<bool> flash_download::resume() {
  std::vector<std::uint8_t> head(trailer_header);
  MALLORN_TRY(flash_.read(trailer_offset(), head));
  if (head != header_of(offer_)) return false;
  std::vector<std::uint8_t> bitmap(blocks());
  MALLORN_TRY(flash_.read(trailer_offset() + trailer_header, bitmap));
  const std::uint64_t sector = flash_.sector_size(), block = offer_.block_size;
  std::vector<std::uint8_t> bytes(sector);
  for (std::uint64_t s = 0; s * sector < offer_.patch_size; ++s) {
    const auto first = static_cast<std::uint32_t>(s * sector / block);
    const auto last = static_cast<std::uint32_t>(std::min<std::uint64_t>(((s + 1) * sector - 1) / block, blocks() - 1));
    MALLORN_TRY(flash_.read(s * sector, bytes));
    bool dirty = false;
    for (std::uint32_t b = first; b <= last && !dirty; ++b) {
      if (bitmap[b] == 0x00) continue;
      const std::uint64_t from = std::max<std::uint64_t>(std::uint64_t{b} * block, s * sector) - s * sector;
      const std::uint64_t to = std::min<std::uint64_t>((std::uint64_t{b} + 1) * block, (s + 1) * sector) - s * sector;
      for (std::uint64_t i = from; i < to && !dirty; ++i) dirty = bytes[i] != 0xff;
    }
    if (!dirty) continue;
    // A block was being written when the power went: its sector is erased and every block that
    // shares the sector is fetched again.
    MALLORN_TRY(flash_.erase_sector(s));
    for (std::uint32_t b = first; b <= last; ++b) bitmap[b] = 0xff;
  }
  for (auto& b : bitmap)
    if (b != 0x00) b = 0xff;  // a bitmap byte cut mid-write counts as missing
  MALLORN_TRY(write_trailer(bitmap));
  for (std::uint32_t b = 0; b < bitmap.size(); ++b)
    if (bitmap[b] == 0x00) held_.push_back(b);
  return true;
}

core::result<void> flash_download::begin(const offer_msg& offer) {
  offer_ = offer;
  held_.clear();
  if (offer.block_size == 0) return core::make_error(core::errc::invalid_argument, "offer with block size 0");
  if (offer.patch_size + trailer_header + blocks() > flash_.size() || offer.patch_size > trailer_offset())
    return core::make_error(core::errc::invalid_argument, "patch of " + std::to_string(offer.patch_size) +
                                                              " bytes does not fit the " + std::to_string(flash_.size()) +
                                                              "-byte download area");
  auto resumed = resume();
  if (!resumed) return resumed.err();
  if (*resumed) return {};
  return start_fresh();
}

core::result<void> flash_download::write(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  if (offset + bytes.size() > offer_.patch_size || offset % offer_.block_size)
    return core::make_error(core::errc::invalid_argument, "block outside the offered patch");
  MALLORN_TRY(flash_.write(offset, bytes));
  // Then its bitmap byte: a block counts as held only once all of it is in.
  const std::uint8_t written = 0x00;
  return flash_.write(trailer_offset() + trailer_header + offset / offer_.block_size, {&written, 1});
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
