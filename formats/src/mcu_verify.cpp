// Host-side proof that an mcu-profile patch works: apply it with the device's own decoder
// (mallorn_lite, firmware/) on two RAM-backed flash slots, exactly as a microcontroller would.
#include <cstring>
#include <vector>

#include "mallorn/core/io.hpp"
#include "mallorn/formats/mcu_patch.hpp"
#include "mcu_ops.hpp"

extern "C" {
#include "mallorn_lite.h"
}

namespace mallorn::formats {
namespace {

constexpr std::uint32_t erase_size = 4096, write_align = 8;

// A slot in RAM that enforces the HAL's contract (aligned writes only onto erased bytes).
struct ram_slot {
  std::vector<std::uint8_t> bytes;
  std::vector<bool> erased;
  mallorn_lite_area area{};
};

int ram_read(const mallorn_lite_area* a, std::uint32_t off, void* dst, std::uint32_t len) {
  auto* s = static_cast<ram_slot*>(a->user);
  if (std::uint64_t{off} + len > s->bytes.size()) return -1;
  std::memcpy(dst, s->bytes.data() + off, len);
  return 0;
}
int ram_write(const mallorn_lite_area* a, std::uint32_t off, const void* src, std::uint32_t len) {
  auto* s = static_cast<ram_slot*>(a->user);
  if (std::uint64_t{off} + len > s->bytes.size() || off % write_align || len % write_align) return -1;
  for (std::uint32_t i = 0; i < len; ++i)
    if (!s->erased[off + i]) return -1;
  std::memcpy(s->bytes.data() + off, src, len);
  for (std::uint32_t i = 0; i < len; ++i) s->erased[off + i] = false;
  return 0;
}
int ram_erase(const mallorn_lite_area* a, std::uint32_t off, std::uint32_t len) {
  auto* s = static_cast<ram_slot*>(a->user);
  if (std::uint64_t{off} + len > s->bytes.size() || off % erase_size || len % erase_size) return -1;
  std::memset(s->bytes.data() + off, 0xff, len);
  for (std::uint32_t i = 0; i < len; ++i) s->erased[off + i] = true;
  return 0;
}
const mallorn_lite_flash_ops ram_ops{ram_read, ram_write, ram_erase};

void make_slot(ram_slot& s, std::size_t image) {
  const std::size_t size = (image + erase_size - 1) / erase_size * erase_size + 2 * erase_size;
  s.bytes.assign(size, 0xff);
  s.erased.assign(size, true);
  s.area = {&ram_ops, &s, static_cast<std::uint32_t>(size), erase_size, write_align};
}

}  // namespace

core::result<core::patch_header> verify_mcu_patch(std::span<const std::uint8_t> old_image,
                                                  std::span<const std::uint8_t> patch,
                                                  const std::optional<core::ed25519_public_key>& public_key) {
  auto probe = core::parse_header(patch);
  if (!probe) return probe.err();
  if (!probe->header) return core::make_error(core::errc::invalid_patch, "mcu patch is truncated inside its header");
  const core::patch_header header = *probe->header;
  if (header.profile != core::patch_profile::mcu)
    return core::make_error(core::errc::invalid_argument, "not an mcu-profile patch");
  if (header.target_size > detail::mcu_max_image || old_image.size() > detail::mcu_max_image)
    return core::make_error(core::errc::invalid_argument, "image larger than the mcu profile's limit");
  ram_slot old_slot, new_slot;
  make_slot(old_slot, old_image.size());
  std::memcpy(old_slot.bytes.data(), old_image.data(), old_image.size());
  make_slot(new_slot, header.target_size);
  mallorn_lite_ctx ctx;
  auto fail = [](int code, const char* what) {
    const core::errc e = code == -MALLORN_LITE_E_SOURCE      ? core::errc::source_hash_mismatch
                         : code == -MALLORN_LITE_E_HASH      ? core::errc::target_hash_mismatch
                         : code == -MALLORN_LITE_E_SIGNATURE ? core::errc::signature_error
                         : code == -MALLORN_LITE_E_DOWNGRADE ? core::errc::downgrade_refused
                         : code == -MALLORN_LITE_E_UNSUPPORTED ? core::errc::unsupported_version
                                                               : core::errc::invalid_patch;
    return core::make_error(e, std::string("mallorn_lite ") + what + " failed with code " + std::to_string(-code));
  };
  if (int r = mallorn_lite_init(&ctx, &old_slot.area, &new_slot.area); r < 0) return fail(r, "init");
  if (public_key)
    if (int r = mallorn_lite_require_signature(&ctx, public_key->data()); r < 0) return fail(r, "require_signature");
  mallorn_lite_in in{patch.data(), patch.size(), 0};
  int r = mallorn_lite_feed(&ctx, &in);
  if (r < 0) return fail(r, "feed");
  if (r > 0) return core::make_error(core::errc::invalid_patch, "mcu patch ended before its body did");
  if (in.pos != in.size) return core::make_error(core::errc::invalid_patch, "bytes after the end of the mcu patch");
  if (int f = mallorn_lite_finish(&ctx); f < 0) return fail(f, "finish");
  return header;
}

core::result<core::patch_header> verify_mcu_patch_file(const std::filesystem::path& old_image,
                                                       const std::filesystem::path& patch,
                                                       const std::optional<core::ed25519_public_key>& public_key) {
  auto old_bytes = core::mapped_file::open(old_image);
  if (!old_bytes) return old_bytes.err();
  auto patch_bytes = core::mapped_file::open(patch);
  if (!patch_bytes) return patch_bytes.err();
  return verify_mcu_patch(old_bytes->bytes(), patch_bytes->bytes(), public_key);
}

}  // namespace mallorn::formats
