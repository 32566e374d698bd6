/* A/B slot state and the boot-time decision (MCUboot's test/confirm/revert, without the swap:
 * the device boots whichever slot the decision names). */
#include <string.h>

#include "mallorn_lite.h"
#include "ml_journal.h"
#include "ml_sha256.h"

int mallorn_lite_slot_read(const struct mallorn_lite_area *slot, struct mallorn_lite_slot_info *out) {
  struct ml_record r;
  struct ml_journal_cursor cur;
  int rc;
  if (!out) return -MALLORN_LITE_E_ARG;
  memset(out, 0, sizeof *out);
  if ((rc = ml_journal_check_geometry(slot)) != 0) return rc;
  rc = ml_journal_scan(slot, &r, &cur);
  if (rc < 0) return rc;
  if (rc == 0) return 0;
  out->state = (enum mallorn_lite_slot_state)r.kind;
  out->image_size = r.image_size;
  out->version = r.version;
  memcpy(out->sha256, r.target_sha, 32);
  return 0;
}

/* Rewrites a slot's newest record with another kind (everything else carried over). */
static int mark(const struct mallorn_lite_area *slot, uint8_t kind) {
  struct ml_record r;
  struct ml_journal_cursor cur;
  int rc = ml_journal_scan(slot, &r, &cur);
  if (rc < 0) return rc;
  if (rc == 0) return -MALLORN_LITE_E_STATE;
  r.kind = kind;
  return ml_journal_append(slot, &cur, &r);
}

int mallorn_lite_boot_select(const struct mallorn_lite_area *slot_a, const struct mallorn_lite_area *slot_b) {
  const struct mallorn_lite_area *slots[2];
  struct mallorn_lite_slot_info info[2];
  int i, rc, pick = -1;
  slots[0] = slot_a;
  slots[1] = slot_b;
  for (i = 0; i < 2; ++i)
    if ((rc = mallorn_lite_slot_read(slots[i], &info[i])) != 0) return rc;

  /* 1. A verified, never-booted image gets its one trial boot (the newer one if both). */
  for (i = 0; i < 2; ++i)
    if (info[i].state == MALLORN_LITE_SLOT_PENDING && (pick < 0 || info[i].version > info[pick].version)) pick = i;
  if (pick >= 0) {
    if ((rc = mark(slots[pick], ML_REC_TRIED)) != 0) return rc;
    return pick;
  }
  /* 2. An image that was tried and never confirmed failed its trial: revert it for good. */
  for (i = 0; i < 2; ++i)
    if (info[i].state == MALLORN_LITE_SLOT_TRIED) {
      if ((rc = mark(slots[i], ML_REC_REVERTED)) != 0) return rc;
      info[i].state = MALLORN_LITE_SLOT_REVERTED;
    }
  /* 3. Otherwise the newest confirmed image. */
  for (i = 0; i < 2; ++i)
    if (info[i].state == MALLORN_LITE_SLOT_CONFIRMED && (pick < 0 || info[i].version > info[pick].version)) pick = i;
  return pick >= 0 ? pick : -MALLORN_LITE_E_NO_IMAGE;
}

int mallorn_lite_confirm(const struct mallorn_lite_area *slot) {
  struct mallorn_lite_slot_info info;
  int rc = mallorn_lite_slot_read(slot, &info);
  if (rc) return rc;
  if (info.state == MALLORN_LITE_SLOT_CONFIRMED) return 0;
  if (info.state != MALLORN_LITE_SLOT_TRIED && info.state != MALLORN_LITE_SLOT_PENDING) return -MALLORN_LITE_E_STATE;
  return mark(slot, ML_REC_CONFIRMED);
}

int mallorn_lite_slot_install(const struct mallorn_lite_area *slot, uint32_t image_size, uint64_t version) {
  struct ml_record r;
  struct ml_journal_cursor cur;
  struct ml_sha256 s;
  uint8_t buf[64];
  uint32_t off;
  int rc;
  if ((rc = ml_journal_check_geometry(slot)) != 0) return rc;
  if (image_size > ml_journal_image_capacity(slot)) return -MALLORN_LITE_E_SPACE;
  ml_sha256_init(&s);
  for (off = 0; off < image_size; off += sizeof buf) {
    uint32_t n = image_size - off < sizeof buf ? image_size - off : (uint32_t)sizeof buf;
    if (slot->ops->read(slot, off, buf, n) != 0) return -MALLORN_LITE_E_FLASH;
    ml_sha256_update(&s, buf, n);
  }
  memset(&r, 0, sizeof r);
  ml_sha256_final(&s, r.target_sha);
  r.kind = ML_REC_CONFIRMED;
  r.image_size = image_size;
  r.version = version;
  if ((rc = ml_journal_reset(slot, &cur)) != 0) return rc;
  return ml_journal_append(slot, &cur, &r);
}
