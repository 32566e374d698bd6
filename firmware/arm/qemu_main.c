/* Applies the embedded patch on a Cortex-M4 (qemu mps2-an386) and prints PASS when the new slot
 * holds an image with the expected SHA-256 and the slot is marked PENDING. The old slot is the
 * read-only embedded image (memory-mapped flash); the new slot is RAM with flash rules. */
#include <stdint.h>
#include <string.h>

#include "mallorn_lite.h"
#include "../src/ml_sha256.h"

void semihost_puts(const char *s);
extern const uint8_t old_image[], old_image_end[], patch_blob[], patch_blob_end[];
#ifdef HAVE_PUBKEY
extern const uint8_t pubkey_blob[];
#endif

#define ERASE 4096u
#define NEW_SLOT_SIZE (1024u * 1024u + 2u * ERASE)
static uint8_t new_slot_mem[NEW_SLOT_SIZE];
static struct mallorn_lite_ctx ctx; /* the whole RAM the applier needs */

static int rom_read(const struct mallorn_lite_area *a, uint32_t off, void *dst, uint32_t len) {
  if (off + len > a->size) return -1;
  memcpy(dst, (const uint8_t *)a->user + off, len);
  return 0;
}
static int rom_write(const struct mallorn_lite_area *a, uint32_t off, const void *src, uint32_t len) {
  (void)a, (void)off, (void)src, (void)len;
  return -1; /* the running image is never written */
}
static int rom_erase(const struct mallorn_lite_area *a, uint32_t off, uint32_t len) {
  (void)a, (void)off, (void)len;
  return -1;
}
static int ram_write(const struct mallorn_lite_area *a, uint32_t off, const void *src, uint32_t len) {
  uint8_t *p = (uint8_t *)a->user + off;
  uint32_t i;
  if (off + len > a->size || off % a->write_align || len % a->write_align) return -1;
  for (i = 0; i < len; ++i)
    if (p[i] != 0xFF) return -1; /* erase before write */
  memcpy(p, src, len);
  return 0;
}
static int ram_erase(const struct mallorn_lite_area *a, uint32_t off, uint32_t len) {
  if (off + len > a->size || off % a->erase_size || len % a->erase_size) return -1;
  memset((uint8_t *)a->user + off, 0xFF, len);
  return 0;
}

static const struct mallorn_lite_flash_ops rom_ops = {rom_read, rom_write, rom_erase};
static const struct mallorn_lite_flash_ops ram_ops = {rom_read, ram_write, ram_erase};

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static int fail(const char *what, int code) {
  semihost_puts("FAIL: ");
  semihost_puts(what);
  semihost_puts(": ");
  semihost_puts(mallorn_lite_strerror(code));
  semihost_puts("\n");
  return 1;
}

int main(void) {
  uint32_t old_len = (uint32_t)(old_image_end - old_image), patch_len = (uint32_t)(patch_blob_end - patch_blob);
  struct mallorn_lite_area old_slot = {&rom_ops, (void *)old_image, 0, ERASE, 8};
  struct mallorn_lite_area new_slot = {&ram_ops, new_slot_mem, NEW_SLOT_SIZE, ERASE, 8};
  struct mallorn_lite_slot_info info;
  struct ml_sha256 s;
  uint8_t digest[32];
  mallorn_lite_in in;
  uint32_t chunk = 1, i;
  int r;
  old_slot.size = (old_len + ERASE - 1) / ERASE * ERASE + 2 * ERASE;
  memset(new_slot_mem, 0x5A, sizeof new_slot_mem); /* a used slot, not an erased one */

  if ((r = mallorn_lite_init(&ctx, &old_slot, &new_slot)) != 0) return fail("init", r);
#ifdef HAVE_PUBKEY
  if ((r = mallorn_lite_require_signature(&ctx, pubkey_blob)) != 0) return fail("require_signature", r);
#endif
  /* Chunks of 1, 2, 4, ... 512 bytes, cycling: the radio hands over whatever it has. */
  for (in.pos = 0, i = 0; i < patch_len; i += (uint32_t)in.pos) {
    in.src = patch_blob + i;
    in.size = patch_len - i < chunk ? patch_len - i : chunk;
    in.pos = 0;
    r = mallorn_lite_feed(&ctx, &in);
    if (r < 0) return fail("feed", r);
    chunk = chunk >= 512 ? 1 : chunk * 2;
    if (r == 0) break;
  }
  if (r != 0) return fail("feed (patch ended early)", MALLORN_LITE_E_CORRUPT);
  if ((r = mallorn_lite_finish(&ctx)) != 0) return fail("finish", r);
  if ((r = mallorn_lite_slot_read(&new_slot, &info)) != 0) return fail("slot_read", r);
  if (info.state != MALLORN_LITE_SLOT_PENDING) return fail("slot state", MALLORN_LITE_E_STATE);

  /* Independent check: hash the new slot's image and compare with the hash the build expects. */
  ml_sha256_init(&s);
  ml_sha256_update(&s, new_slot_mem, info.image_size);
  ml_sha256_final(&s, digest);
  for (i = 0; i < 32; ++i)
    if (digest[i] != (uint8_t)(hexval(TARGET_SHA_HEX[2 * i]) << 4 | hexval(TARGET_SHA_HEX[2 * i + 1])))
      return fail("target hash", MALLORN_LITE_E_HASH);
  semihost_puts("PASS: mallorn_lite applied the patch on Cortex-M4");
#ifdef HAVE_PUBKEY
  semihost_puts(" (Ed25519 signature verified)");
#endif
  semihost_puts("\n");
  return 0;
}
