/* The streaming applier for profile-1 (mcu) patches: the public calls. Byte layout:
 * docs/patch-format.md. The work is in ml_header.c, ml_body.c and ml_output.c.
 *
 * One pass: header (checked, optionally signature-verified, before anything is written), source
 * check, then blocks. Each block restarts the range coder and its models, so the state at a block
 * boundary is a handful of integers plus the output hash; the journal saves exactly that at every
 * block boundary that is also an erase-block boundary of the output. */
#include <string.h>

#include "ml_ctx.h"

_Static_assert(sizeof(struct ml_ctx) <= MALLORN_LITE_CTX_SIZE, "mallorn_lite context exceeds its budget");
_Static_assert(MALLORN_LITE_CTX_SIZE <= 1024, "mallorn_lite RAM budget is 1 KiB");

static struct ml_ctx *C(struct mallorn_lite_ctx *c) { return (struct ml_ctx *)(void *)c->opaque_.bytes_; }
static const struct ml_ctx *CC(const struct mallorn_lite_ctx *c) {
  return (const struct ml_ctx *)(const void *)c->opaque_.bytes_;
}

int ml_fail(struct ml_ctx *x, int code) {
  if (!x->err) x->err = -code;
  return x->err;
}

const char *mallorn_lite_strerror(int code) {
  static const char *const names[] = {"ok",           "bad argument",     "flash error",      "corrupt patch",
                                      "unsupported",  "wrong source",     "hash mismatch",    "bad signature",
                                      "no space",     "downgrade",        "bad state",        "no bootable image",
                                      "bad keyring",  "keyring rollback", "keyring expired"};
  if (code < 0) code = -code;
  return code < (int)(sizeof names / sizeof names[0]) ? names[code] : "unknown error";
}

int mallorn_lite_init(struct mallorn_lite_ctx *c, const struct mallorn_lite_area *old_slot,
                      const struct mallorn_lite_area *new_slot) {
  struct ml_ctx *x;
  struct ml_record r;
  int rc;
  if (!c) return -MALLORN_LITE_E_ARG;
  x = C(c);
  memset(x, 0, sizeof *x);
  x->old_slot = old_slot;
  x->new_slot = new_slot;
  if (ml_journal_check_geometry(old_slot) || ml_journal_check_geometry(new_slot) || old_slot == new_slot)
    return ml_fail(x, MALLORN_LITE_E_ARG);
  rc = ml_journal_scan(new_slot, &r, &x->jcur);
  if (rc < 0) return ml_fail(x, -rc);
  if (rc == 1 && r.kind == ML_REC_UPDATING) {
    /* An interrupted apply: everything before r.out_pos is in flash and hashed into r.sha_state. */
    x->resumed = 1;
    x->touched = 1;
    x->state = ST_BLOCK_LEN;
    x->log2_block = r.log2_block;
    x->log2_window = r.log2_window;
    x->target_size = r.image_size;
    x->source_size = r.source_size;
    x->header_size = r.header_size;
    x->body_end = r.header_size + r.body_size;
    x->consumed = r.patch_offset;
    x->out_pos = r.out_pos;
    x->old_pos = r.old_pos;
    x->old_hw = r.old_hw;
    ml_sha256_restore(&x->sha, r.sha_state, r.out_pos);
    /* Only this library writes these records, but a record from another build or geometry must
     * not lead to writes into unerased flash. */
    if (x->log2_block < 8 || x->log2_block > MAX_LOG2_BLOCK || x->log2_window < 8 || x->log2_window > 30 ||
        x->out_pos > x->target_size || x->out_pos % new_slot->erase_size || x->out_pos % (1u << x->log2_block) ||
        x->consumed > x->body_end || x->target_size > ml_journal_image_capacity(new_slot) ||
        x->source_size > ml_journal_image_capacity(old_slot))
      return ml_fail(x, MALLORN_LITE_E_CORRUPT);
    if (x->out_pos == x->target_size) x->state = ST_SKIP; /* only the end check is left */
    return 0;
  }
  x->state = ST_HEADER;
  ml_sha256_init(&x->sha);
  return 0;
}

size_t mallorn_lite_context_used(void) { return sizeof(struct ml_ctx); }

uint32_t mallorn_lite_resume_offset(const struct mallorn_lite_ctx *c) { return c ? CC(c)->consumed : 0; }

int mallorn_lite_require_signature(struct mallorn_lite_ctx *c, const uint8_t public_key[32]) {
  struct ml_ctx *x = C(c);
  if (x->err) return x->err;
  if (x->resumed) return 0;
  if (x->state != ST_HEADER || x->consumed != 0 || !public_key) return ml_fail(x, MALLORN_LITE_E_STATE);
#ifdef MALLORN_LITE_ED25519
  memcpy(x->u.hdr.public_key, public_key, 32);
  x->need_signature = 1;
  return 0;
#else
  return ml_fail(x, MALLORN_LITE_E_UNSUPPORTED);
#endif
}

int mallorn_lite_set_min_version(struct mallorn_lite_ctx *c, uint64_t min_version) {
  struct ml_ctx *x = C(c);
  if (x->err) return x->err;
  if (x->resumed) return 0;
  if (x->state != ST_HEADER || x->consumed != 0) return ml_fail(x, MALLORN_LITE_E_STATE);
  x->u.hdr.min_version[0] = (uint32_t)min_version;
  x->u.hdr.min_version[1] = (uint32_t)(min_version >> 32);
  return 0;
}

int mallorn_lite_feed(struct mallorn_lite_ctx *c, mallorn_lite_in *in) {
  struct ml_ctx *x;
  int r;
  if (!c) return -MALLORN_LITE_E_ARG;
  x = C(c);
  if (x->err) return x->err;
  if (!in || (!in->src && in->size) || in->pos > in->size) return ml_fail(x, MALLORN_LITE_E_ARG);
  if (x->state == ST_FINISHED) return ml_fail(x, MALLORN_LITE_E_STATE);
  if (x->state == ST_HEADER && ml_feed_header(x, in)) return x->err;
  if (x->state == ST_HEADER) return 1;
  r = ml_feed_body(x, in);
  if (r < 0) return r;
  if (x->state == ST_DONE) return 0;
  if (x->body_end > x->consumed) {
    uint32_t left = x->body_end - x->consumed;
    return left > 0x7FFFFFFF ? 0x7FFFFFFF : (int)left;
  }
  return 1;
}

int mallorn_lite_finish(struct mallorn_lite_ctx *c) {
  struct ml_ctx *x;
  struct ml_record r;
  uint8_t digest[32];
  if (!c) return -MALLORN_LITE_E_ARG;
  x = C(c);
  if (x->err) return x->err;
  if (x->state != ST_DONE) return ml_fail(x, MALLORN_LITE_E_STATE);
  if (ml_flush_out(x, 1)) return x->err;
  ml_sha256_final(&x->sha, digest);
  if (ml_journal_read_last(x->new_slot, &x->jcur, &r) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  if (memcmp(digest, r.target_sha, 32) != 0) {
    ml_journal_reset(x->new_slot, &x->jcur); /* a wrong image must not be resumed or booted */
    return ml_fail(x, MALLORN_LITE_E_HASH);
  }
  r.kind = ML_REC_PENDING; /* image size, version and target hash carried over */
  r.patch_offset = r.out_pos = r.old_pos = r.old_hw = 0;
  memset(r.sha_state, 0, sizeof r.sha_state);
  if (ml_journal_append(x->new_slot, &x->jcur, &r) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
  x->state = ST_FINISHED;
  return 0;
}

void mallorn_lite_abort(struct mallorn_lite_ctx *c) {
  struct ml_ctx *x;
  if (!c) return;
  x = C(c);
  /* Before the first write the slot still holds whatever it held (maybe the fallback image). */
  if (x->touched && x->state != ST_FINISHED) ml_journal_reset(x->new_slot, &x->jcur);
  ml_fail(x, MALLORN_LITE_E_STATE);
}
