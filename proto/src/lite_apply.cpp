// Applies an mcu-profile patch the way the device's firmware does: mallorn_lite (firmware/) reading
// the old image from one flash slot and writing the new one into another, fed from the download
// area in small reads. The slots are flash_sim files next to the download area, so a power cut
// (the sim's cut_power_at) and a restart resume the apply from mallorn_lite's journal.
#include "mallorn/proto/lite_apply.hpp"

#include <algorithm>
#include <vector>

#include "mallorn/core/hash.hpp"
#include "mallorn/core/io.hpp"

extern "C" {
#include "mallorn_lite.h"
}

namespace mallorn::proto {
namespace {

constexpr std::uint32_t write_align = 8;

int slot_read(const mallorn_lite_area* a, std::uint32_t off, void* dst, std::uint32_t len) {
  auto* f = static_cast<flash_sim*>(a->user);
  return f->read(off, {static_cast<std::uint8_t*>(dst), len}) ? 0 : -1;
}
int slot_write(const mallorn_lite_area* a, std::uint32_t off, const void* src, std::uint32_t len) {
  auto* f = static_cast<flash_sim*>(a->user);
  return f->write(off, {static_cast<const std::uint8_t*>(src), len}) ? 0 : -1;
}
int slot_erase(const mallorn_lite_area* a, std::uint32_t off, std::uint32_t len) {
  auto* f = static_cast<flash_sim*>(a->user);
  for (std::uint32_t at = off; at < off + len; at += f->sector_size())
    if (!f->erase_sector(at / f->sector_size())) return -1;
  return 0;
}
const mallorn_lite_flash_ops slot_ops{slot_read, slot_write, slot_erase};

std::uint64_t slot_bytes(std::uint64_t image, std::uint32_t sector) {
  return (image + sector - 1) / sector * sector + 2ull * sector;  // image, then the two-block trailer
}

core::error lite_error(int code, const char* what) {
  const core::errc e = code == -MALLORN_LITE_E_SOURCE      ? core::errc::source_hash_mismatch
                       : code == -MALLORN_LITE_E_HASH      ? core::errc::target_hash_mismatch
                       : code == -MALLORN_LITE_E_SIGNATURE ? core::errc::signature_error
                       : code == -MALLORN_LITE_E_FLASH     ? core::errc::io_error
                                                           : core::errc::invalid_patch;
  return core::make_error(e, std::string("mallorn_lite_") + what + " returned -" + std::to_string(-code));
}

}  // namespace

core::result<std::string> lite_apply(flash_sim& download, std::uint64_t patch_size, const std::filesystem::path& old_model,
                                     const std::filesystem::path& new_model, std::uint64_t target_size) {
  const std::uint32_t sector = download.sector_size();
  auto old_bytes = core::read_file(old_model);
  if (!old_bytes) return old_bytes.err();
  // The running slot holds the old image; (re)programmed only when it does not already.
  const auto slot_a_file = new_model.parent_path() / (new_model.filename().string() + ".slot-a");
  const auto slot_b_file = new_model.parent_path() / (new_model.filename().string() + ".slot-b");
  auto slot_a = flash_sim::open(slot_a_file, slot_bytes(old_bytes->size(), sector), sector);
  if (!slot_a) return slot_a.err();
  {
    std::vector<std::uint8_t> now(old_bytes->size());
    MALLORN_TRY(slot_a->read(0, now));
    if (now != *old_bytes) {
      for (std::uint64_t s = 0; s * sector < slot_a->size(); ++s) MALLORN_TRY(slot_a->erase_sector(s));
      MALLORN_TRY(slot_a->write(0, *old_bytes));
    }
  }
  auto slot_b = flash_sim::open(slot_b_file, slot_bytes(target_size, sector), sector);
  if (!slot_b) return slot_b.err();
  mallorn_lite_area a{&slot_ops, &*slot_a, static_cast<std::uint32_t>(slot_a->size()), sector, write_align};
  mallorn_lite_area b{&slot_ops, &*slot_b, static_cast<std::uint32_t>(slot_b->size()), sector, write_align};
  mallorn_lite_ctx ctx;
  if (int r = mallorn_lite_init(&ctx, &a, &b); r < 0) return lite_error(r, "init");
  // Resumes where mallorn_lite's journal says (0 for a fresh apply).
  std::uint64_t at = mallorn_lite_resume_offset(&ctx);
  std::vector<std::uint8_t> chunk(std::min<std::uint64_t>(sector, 4096));
  int r = 1;
  while (at < patch_size && r > 0) {
    const auto n = std::min<std::uint64_t>(chunk.size(), patch_size - at);
    MALLORN_TRY(download.read(at, {chunk.data(), n}));
    mallorn_lite_in in{chunk.data(), n, 0};
    r = mallorn_lite_feed(&ctx, &in);
    if (r < 0) return lite_error(r, "feed");
    at += in.pos;
  }
  if (r != 0) return core::make_error(core::errc::invalid_patch, "the patch ended before mallorn_lite was done");
  if (int f = mallorn_lite_finish(&ctx); f < 0) return lite_error(f, "finish");
  // The new slot holds the target; hand it to the host side as a file.
  std::vector<std::uint8_t> image(target_size);
  MALLORN_TRY(slot_b->read(0, image));
  MALLORN_TRY(core::write_file_atomic(new_model, image));
  return core::to_hex(core::sha256_of(image));
}

}  // namespace mallorn::proto
