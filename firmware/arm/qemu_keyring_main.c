/* Keyrings on a Cortex-M4 (qemu mps2-an386): the sequence of tests/firmware/lite_keyring_test.cpp
 * on real target code. Embedded: the root public key, binary keyrings v1 (trusts K1), v2 (revokes
 * K1, adds K2), v3 (new root, signed by old and new), patches signed by K1 and K2, and the old
 * image. Prints PASS when every step gave the expected result, including a power cut at every
 * flash operation while v3 is stored. */
#include <stdint.h>
#include <string.h>

#include "mallorn_lite.h"
#include "mallorn_lite_keyring.h"

void semihost_puts(const char *s);
extern const uint8_t old_image[], old_image_end[], root_pub[], kr_v1[], kr_v1_end[], kr_v2[], kr_v2_end[], kr_v3[], kr_v3_end[],
    patch_k1[], patch_k1_end[], patch_k2[], patch_k2_end[];

#define EXPIRED_NOW (NOW + 31ull * 86400ull) /* the keyrings expire after 30 days */
#define ERASE 4096u
#define NEW_SLOT_SIZE (64u * 1024u + 2u * ERASE)
static uint8_t new_slot_mem[NEW_SLOT_SIZE];
static uint8_t keyring_mem[2 * ERASE];
static uint8_t keyring_saved[2 * ERASE];
static struct mallorn_lite_ctx ctx;
static long flash_ops, cut_at = -1;

static int mem_read(const struct mallorn_lite_area *a, uint32_t off, void *dst, uint32_t len) {
  if (off + len > a->size) return -1;
  memcpy(dst, (const uint8_t *)a->user + off, len);
  return 0;
}
static int power_ok(void) { return cut_at < 0 || flash_ops++ < cut_at; }
static int ram_write(const struct mallorn_lite_area *a, uint32_t off, const void *src, uint32_t len) {
  uint8_t *p = (uint8_t *)a->user + off;
  uint32_t i;
  if (off + len > a->size || off % a->write_align || len % a->write_align) return -1;
  for (i = 0; i < len; ++i)
    if (p[i] != 0xFF) return -1;
  if (!power_ok()) { /* the cut tears the write: half of it lands */
    memcpy(p, src, len / 2);
    return -1;
  }
  memcpy(p, src, len);
  return 0;
}
static int ram_erase(const struct mallorn_lite_area *a, uint32_t off, uint32_t len) {
  if (off + len > a->size || off % a->erase_size || len % a->erase_size) return -1;
  if (!power_ok()) {
    memset((uint8_t *)a->user + off, 0xFF, len / 3);
    return -1;
  }
  memset((uint8_t *)a->user + off, 0xFF, len);
  return 0;
}
static int rom_write(const struct mallorn_lite_area *a, uint32_t off, const void *src, uint32_t len) {
  (void)a, (void)off, (void)src, (void)len;
  return -1;
}
static int rom_erase(const struct mallorn_lite_area *a, uint32_t off, uint32_t len) {
  (void)a, (void)off, (void)len;
  return -1;
}
static const struct mallorn_lite_flash_ops rom_ops = {mem_read, rom_write, rom_erase};
static const struct mallorn_lite_flash_ops ram_ops = {mem_read, ram_write, ram_erase};
static struct mallorn_lite_area old_slot = {&rom_ops, 0, 0, ERASE, 8};
static struct mallorn_lite_area new_slot = {&ram_ops, new_slot_mem, NEW_SLOT_SIZE, ERASE, 8};
static const struct mallorn_lite_area keyring_area = {&ram_ops, keyring_mem, 2 * ERASE, ERASE, 8};

static int apply(const uint8_t *patch, const uint8_t *end, uint64_t now) {
  mallorn_lite_in in;
  int r;
  memset(new_slot_mem, 0x5A, sizeof new_slot_mem);
  if ((r = mallorn_lite_init(&ctx, &old_slot, &new_slot)) != 0) return r;
  if ((r = mallorn_lite_require_keyring(&ctx, &keyring_area, "sensor-fw", now)) != 0) return r;
  in.src = patch, in.size = (size_t)(end - patch), in.pos = 0;
  r = mallorn_lite_feed(&ctx, &in);
  if (r < 0) return r;
  if (r != 0) return -MALLORN_LITE_E_CORRUPT;
  return mallorn_lite_finish(&ctx);
}
static int store(const uint8_t *blob, const uint8_t *end, uint64_t now) {
  return mallorn_lite_keyring_store(&keyring_area, blob, (uint32_t)(end - blob), root_pub, now);
}
static int expect(const char *step, int got, int want) {
  if (got == want) return 0;
  semihost_puts("FAIL: ");
  semihost_puts(step);
  semihost_puts(": ");
  semihost_puts(mallorn_lite_strerror(got));
  semihost_puts("\n");
  return 1;
}
static uint64_t version(void) {
  uint64_t v = 0;
  return mallorn_lite_keyring_version(&keyring_area, &v) == 0 ? v : 999;
}

int main(void) {
  uint64_t v;
  long cut;
  old_slot.user = (void *)old_image;
  old_slot.size = ((uint32_t)(old_image_end - old_image) + ERASE - 1) / ERASE * ERASE + 2 * ERASE;
  memset(keyring_mem, 0xFF, sizeof keyring_mem);
  if (expect("no keyring yet", apply(patch_k1, patch_k1_end, NOW), -MALLORN_LITE_E_KEYRING) ||
      expect("store v1", store(kr_v1, kr_v1_end, NOW), 0) || expect("K1 under v1", apply(patch_k1, patch_k1_end, NOW), 0) ||
      expect("store v2", store(kr_v2, kr_v2_end, NOW), 0) ||
      expect("K1 revoked by v2", apply(patch_k1, patch_k1_end, NOW), -MALLORN_LITE_E_SIGNATURE) ||
      expect("K2 under v2", apply(patch_k2, patch_k2_end, NOW), 0) ||
      expect("v1 again", store(kr_v1, kr_v1_end, NOW), -MALLORN_LITE_E_ROLLBACK) ||
      expect("expired", apply(patch_k2, patch_k2_end, EXPIRED_NOW), -MALLORN_LITE_E_EXPIRED))
    return 1;
  /* Root rotation, with the power cut at every flash operation of the store. */
  memcpy(keyring_saved, keyring_mem, sizeof keyring_mem);
  for (cut = 0;; ++cut) {
    int r;
    memcpy(keyring_mem, keyring_saved, sizeof keyring_mem);
    flash_ops = 0, cut_at = cut;
    r = store(kr_v3, kr_v3_end, NOW);
    cut_at = -1;
    v = version();
    if ((v != 2 && v != 3) || (r == 0 && v != 3)) return expect("power cut while storing v3", r, 0) | 1;
    if (r == 0) break;
    if (expect("store v3 after the cut", store(kr_v3, kr_v3_end, NOW), 0) || version() != 3) return 1;
  }
  if (expect("K2 under v3", apply(patch_k2, patch_k2_end, NOW), 0)) return 1;
  semihost_puts("PASS: mallorn_lite keyrings on Cortex-M4 (rotation, revocation, rollback, expiry, root rotation, power cuts)\n");
  return 0;
}
