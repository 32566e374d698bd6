/* Output: staged in 32-byte pieces, hashed, written strictly forward (erasing each erase block at
 * its first write); old-image reads; journal checkpoints. */
#include <string.h>

#include "ml_ctx.h"

int ml_flush_out(struct ml_ctx *x, int final) {
  const struct mallorn_lite_area *a = x->new_slot;
  uint32_t len = x->wfill;
  if (!len) return 0;
  {
  ml_sha256_update(&x->sha, x->wbuf, len);
  if (final) {
    len = (len + a->write_align - 1) & ~(a->write_align - 1);
    memset(x->wbuf + x->wfill, 0xFF, len - x->wfill);
  }
  /* Output is written strictly forward from an erase-block boundary (0 or a checkpoint), in
   * WBUF-sized pieces, so a piece starting a block is the first write into it since the apply
   * (re)started and everything after it is stale: erase then. */
  uint32_t at = x->out_pos - x->wfill;
  if (at % a->erase_size == 0 && a->ops->erase(a, at, a->erase_size) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  if (a->ops->write(a, at, x->wbuf, len) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  x->wfill = 0;
  }
  return 0;
}

int ml_read_old(struct ml_ctx *x, uint32_t n) {
  if (x->old_slot->ops->read(x->old_slot, x->old_pos, x->wbuf + x->wfill, n) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  x->old_pos += n;
  return 0;
}

/* The target hash and version are not kept in RAM: the first record copies them from the header,
 * every later one from the record before it. */
int ml_checkpoint(struct ml_ctx *x, int first) {
  struct ml_record r;
  memset(&r, 0, sizeof r);
  if (first) {
    r.version = le64(x->u.hdr.buf + 96);
    memcpy(r.target_sha, x->u.hdr.buf + 64, 32);
  } else if (ml_journal_read_last(x->new_slot, &x->jcur, &r) != 0) {
    return ml_fail(x, MALLORN_LITE_E_FLASH);
  }
  r.kind = ML_REC_UPDATING;
  r.log2_block = x->log2_block;
  r.log2_window = x->log2_window;
  r.image_size = x->target_size;
  r.source_size = x->source_size;
  r.header_size = x->header_size;
  r.body_size = x->body_end - x->header_size;
  r.patch_offset = x->consumed;
  r.out_pos = x->out_pos;
  r.old_pos = x->old_pos;
  r.old_hw = x->old_hw;
  ml_sha256_save(&x->sha, r.sha_state);
  if (ml_journal_append(x->new_slot, &x->jcur, &r) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  return 0;
}

