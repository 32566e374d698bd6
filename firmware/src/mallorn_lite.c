/* The streaming applier for profile-1 (mcu) patches. Byte layout: docs/patch-format.md.
 *
 * One pass: header (checked, optionally signature-verified, before anything is written), source
 * check, then blocks. Each block restarts the range coder and its models, so the state at a block
 * boundary is a handful of integers plus the output hash; the journal saves exactly that at every
 * block boundary that is also an erase-block boundary of the output. */
#include <string.h>

#include "mallorn_lite.h"
#include "ml_journal.h"
#include "ml_rc.h"
#include "ml_sha256.h"
#ifdef MALLORN_LITE_ED25519
#include "ml_ed25519.h"
#endif

#define HEADER_FIXED 176u
#define HEADER_BUF 256u /* signed message + signature must fit here to be verified */
#define WBUF 32u        /* output staging; a multiple of every supported write alignment */
#define BODY_HEADER 4u
#define LEN_BITS 15     /* op lengths are 1..2^14 (a block is at most 16 KiB) */
#define SEEK_BITS 25    /* seek distances are 1..2^25-1 (images up to 32 MiB) */
#define DIST_BITS 16    /* match distances are 1..2^16-1 */
#define MAX_LOG2_BLOCK 14

enum { ST_HEADER, ST_BODY_HEADER, ST_BLOCK_LEN, ST_BLOCK, ST_SKIP, ST_DONE, ST_FINISHED };
enum { OP_COPY = 0, OP_ADD = 1, OP_LIT = 2, OP_SEEK = 3, OP_MATCH = 4 };
enum { PHASE_KIND, PHASE_ARG, PHASE_SEEK_LOW, PHASE_DIST, PHASE_RUN };

/* Adaptive probabilities of one block (reset at every block start). */
struct ml_models {
  uint16_t kind[4][3];  /* 2-bit tree, context: previous op kind (match shares seek's) */
  uint16_t other[4];    /* after kind 3: seek (0) or match (1) */
  uint16_t len[4][LEN_BITS]; /* copy, add, literal, match */
  uint16_t dist[DIST_BITS];
  uint16_t seek_sign;
  uint16_t seek[SEEK_BITS];
  uint16_t byte[255]; /* 8-bit tree (node m at m - 1) for literal bytes and add differences */
};

/* Field order avoids padding: the budget is tight. */
struct ml_ctx {
  const struct mallorn_lite_area *old_slot;
  const struct mallorn_lite_area *new_slot;
  int32_t err; /* sticky: 0 or -MALLORN_LITE_E_* */
  uint8_t state;
  uint8_t need_signature;
  uint8_t log2_block;
  uint8_t log2_window;
  uint8_t phase;
  uint8_t kind;
  uint8_t prev_kind;
  uint8_t wfill;     /* bytes staged in wbuf */
  uint8_t add_ahead; /* old bytes in wbuf still waiting for their difference */
  uint8_t rc_ready;
  uint8_t varint_shift;
  uint8_t resumed;
  uint8_t touched; /* the new slot's trailer says UPDATING: abort must roll it back */
  uint8_t seek_negative;
  uint32_t consumed; /* patch offset of the next byte */
  uint32_t header_size;
  uint32_t body_end; /* header_size + body_size */
  uint32_t source_size;
  uint32_t target_size;
  uint32_t out_pos; /* output bytes produced (the first out_pos - wfill are in flash) */
  uint32_t old_pos;
  uint32_t old_hw;
  uint32_t block_out_end;
  uint32_t block_in_left; /* bytes of the current block not yet in the lookahead */
  uint32_t op_left; /* also the block length while its varint is read, a seek's bit length */
  uint32_t dist;    /* match distance */
  struct ml_journal_cursor jcur;
  struct ml_sha256 sha; /* header check while parsing the header, the output afterwards */
  struct ml_rc rc;
  uint8_t wbuf[WBUF];
  union {
    struct {
      uint8_t buf[HEADER_BUF];
      uint8_t public_key[32];
      uint32_t min_version[2]; /* low, high words: a uint64_t here would pad the union */
    } hdr;
    struct ml_models m;
  } u;
};

_Static_assert(sizeof(struct ml_ctx) <= MALLORN_LITE_CTX_SIZE, "mallorn_lite context exceeds its budget");
_Static_assert(MALLORN_LITE_CTX_SIZE <= 1024, "mallorn_lite RAM budget is 1 KiB");

static struct ml_ctx *C(struct mallorn_lite_ctx *c) { return (struct ml_ctx *)(void *)c->opaque_.bytes_; }
static const struct ml_ctx *CC(const struct mallorn_lite_ctx *c) {
  return (const struct ml_ctx *)(const void *)c->opaque_.bytes_;
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

static int fail(struct ml_ctx *x, int code) {
  if (!x->err) x->err = -code;
  return x->err;
}

const char *mallorn_lite_strerror(int code) {
  static const char *const names[] = {"ok",           "bad argument",     "flash error",      "corrupt patch",
                                      "unsupported",  "wrong source",     "hash mismatch",    "bad signature",
                                      "no space",     "downgrade",        "bad state",        "no bootable image"};
  if (code < 0) code = -code;
  return code < (int)(sizeof names / sizeof names[0]) ? names[code] : "unknown error";
}

/* ---- output ---- */

static int flush_out(struct ml_ctx *x, int final) {
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
  if (at % a->erase_size == 0 && a->ops->erase(a, at, a->erase_size) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  if (a->ops->write(a, at, x->wbuf, len) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  x->wfill = 0;
  }
  return 0;
}

static int read_old(struct ml_ctx *x, uint32_t n) {
  if (x->old_slot->ops->read(x->old_slot, x->old_pos, x->wbuf + x->wfill, n) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  x->old_pos += n;
  return 0;
}

/* ---- journal ---- */

/* The target hash and version are not kept in RAM: the first record copies them from the header,
 * every later one from the record before it. */
static int checkpoint(struct ml_ctx *x, int first) {
  struct ml_record r;
  memset(&r, 0, sizeof r);
  if (first) {
    r.version = le64(x->u.hdr.buf + 96);
    memcpy(r.target_sha, x->u.hdr.buf + 64, 32);
  } else if (ml_journal_read_last(x->new_slot, &x->jcur, &r) != 0) {
    return fail(x, MALLORN_LITE_E_FLASH);
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
  if (ml_journal_append(x->new_slot, &x->jcur, &r) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  return 0;
}

/* ---- init ---- */

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
    return fail(x, MALLORN_LITE_E_ARG);
  rc = ml_journal_scan(new_slot, &r, &x->jcur);
  if (rc < 0) return fail(x, -rc);
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
      return fail(x, MALLORN_LITE_E_CORRUPT);
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
  if (x->state != ST_HEADER || x->consumed != 0 || !public_key) return fail(x, MALLORN_LITE_E_STATE);
#ifdef MALLORN_LITE_ED25519
  memcpy(x->u.hdr.public_key, public_key, 32);
  x->need_signature = 1;
  return 0;
#else
  return fail(x, MALLORN_LITE_E_UNSUPPORTED);
#endif
}

int mallorn_lite_set_min_version(struct mallorn_lite_ctx *c, uint64_t min_version) {
  struct ml_ctx *x = C(c);
  if (x->err) return x->err;
  if (x->resumed) return 0;
  if (x->state != ST_HEADER || x->consumed != 0) return fail(x, MALLORN_LITE_E_STATE);
  x->u.hdr.min_version[0] = (uint32_t)min_version;
  x->u.hdr.min_version[1] = (uint32_t)(min_version >> 32);
  return 0;
}

/* ---- header ---- */

/* The fixed 176 bytes are in u.hdr.buf. */
static int parse_fixed(struct ml_ctx *x) {
  const uint8_t *h = x->u.hdr.buf;
  uint64_t source_size, target_size, body_size;
  uint32_t stats_bytes, sig = (h[7] & 1u) ? 64u : 0u;
  if (memcmp(h, "MLRN", 4) != 0) return fail(x, MALLORN_LITE_E_CORRUPT);
  if (h[4] != 1 || h[5] != 1 || h[12] != 2) return fail(x, MALLORN_LITE_E_UNSUPPORTED);
  if (h[6] > 4 || (h[7] & ~3u) || h[14] || h[15]) return fail(x, MALLORN_LITE_E_CORRUPT);
  x->header_size = le32(h + 8);
  stats_bytes = le32(h + 172);
  if (stats_bytes > (1u << 20) || x->header_size != HEADER_FIXED + stats_bytes + 4 + sig)
    return fail(x, MALLORN_LITE_E_CORRUPT);
  source_size = le64(h + 16);
  target_size = le64(h + 24);
  body_size = le64(h + 112);
  if (body_size > 0xFFFFFFFFull - x->header_size) return fail(x, MALLORN_LITE_E_UNSUPPORTED);
  if (x->need_signature && x->header_size > HEADER_BUF) return fail(x, MALLORN_LITE_E_UNSUPPORTED);
  x->body_end = x->header_size + (uint32_t)body_size;
  if (source_size > ml_journal_image_capacity(x->old_slot)) return fail(x, MALLORN_LITE_E_SOURCE);
  if (target_size > ((ml_journal_image_capacity(x->new_slot)) & ~(WBUF - 1))) return fail(x, MALLORN_LITE_E_SPACE);
  x->source_size = (uint32_t)source_size;
  x->target_size = (uint32_t)target_size;
  return 0;
}

/* Everything the header promises is checked here, before the first flash write. */
static int header_complete(struct ml_ctx *x) {
  uint8_t digest[32];
  uint32_t off;
  if (x->need_signature) {
    if (!(x->u.hdr.buf[7] & 1u)) return fail(x, MALLORN_LITE_E_SIGNATURE);
#ifdef MALLORN_LITE_ED25519
    if (!ml_ed25519_verify(x->u.hdr.buf + x->header_size - 64, x->u.hdr.public_key, x->u.hdr.buf, x->header_size - 64))
      return fail(x, MALLORN_LITE_E_SIGNATURE);
#endif
  }
  if (le64(x->u.hdr.buf + 96) < ((uint64_t)x->u.hdr.min_version[1] << 32 | x->u.hdr.min_version[0])) return fail(x, MALLORN_LITE_E_DOWNGRADE);
  /* The old slot must hold exactly the source image (its hash is in the header). */
  ml_sha256_init(&x->sha);
  for (off = 0; off < x->source_size; off += ML_LA_SIZE) {
    uint32_t n = x->source_size - off < ML_LA_SIZE ? x->source_size - off : ML_LA_SIZE;
    if (x->old_slot->ops->read(x->old_slot, off, x->rc.la, n) != 0) return fail(x, MALLORN_LITE_E_FLASH);
    ml_sha256_update(&x->sha, x->rc.la, n);
  }
  ml_sha256_final(&x->sha, digest);
  if (memcmp(digest, x->u.hdr.buf + 32, 32) != 0) return fail(x, MALLORN_LITE_E_SOURCE);
  ml_sha256_init(&x->sha);
  x->state = ST_BODY_HEADER;
  return 0;
}

static int feed_header(struct ml_ctx *x, mallorn_lite_in *in) {
  while (in->pos < in->size && x->state == ST_HEADER) {
    uint8_t b = in->src[in->pos++];
    uint32_t o = x->consumed++;
    uint32_t check_at = x->header_size - 4 - ((x->u.hdr.buf[7] & 1u) ? 64u : 0u);
    if (o < HEADER_BUF) x->u.hdr.buf[o] = b;
    if (o < HEADER_FIXED) {
      ml_sha256_update(&x->sha, &b, 1);
      if (o == 3 && memcmp(x->u.hdr.buf, "MLRN", 4) != 0) return fail(x, MALLORN_LITE_E_CORRUPT);
      if (o + 1 == HEADER_FIXED && parse_fixed(x)) return x->err;
      continue;
    }
    if (o < check_at) {
      ml_sha256_update(&x->sha, &b, 1);
      continue;
    }
    if (o == check_at) ml_sha256_final(&x->sha, x->rc.la); /* rc.la is free until the body */
    if (o < check_at + 4 && b != x->rc.la[o - check_at]) return fail(x, MALLORN_LITE_E_CORRUPT);
    if (o + 1 == x->header_size && header_complete(x)) return x->err;
  }
  return 0;
}

/* ---- body ---- */

static void reset_models(struct ml_ctx *x) {
  uint16_t *p = (uint16_t *)(void *)&x->u.m;
  size_t i, n = sizeof(struct ml_models) / sizeof(uint16_t);
  for (i = 0; i < n; ++i) p[i] = ML_PROB_INIT;
  x->prev_kind = 0;
  x->phase = PHASE_KIND;
}

static void la_fill(struct ml_ctx *x, mallorn_lite_in *in) {
  struct ml_rc *r = &x->rc;
  while (r->la_count < ML_LA_SIZE && x->block_in_left && in->pos < in->size) {
    r->la[(r->la_head + r->la_count) & (ML_LA_SIZE - 1)] = in->src[in->pos++];
    r->la_count++;
    x->block_in_left--;
    x->consumed++;
  }
}

/* A unit of `n` decisions may start when n bytes are buffered or the block has no more. */
static int la_ready(const struct ml_ctx *x, unsigned n) { return x->rc.la_count >= n || x->block_in_left == 0; }

/* gamma: the bit length n of v >= 1 in unary through the models in pre[], then v's n - 1 low bits
 * as direct bits. Split in two so that no unit needs more than 32 decisions. */
static uint32_t dec_gamma_length(struct ml_ctx *x, uint16_t *pre, uint32_t bits) {
  uint32_t n = 1;
  while (n < bits && ml_rc_bit(&x->rc, &pre[n - 1])) ++n;
  return n;
}

static uint32_t dec_gamma_low(struct ml_ctx *x, uint32_t n) {
  uint32_t v = 1;
  while (--n) v = (v << 1) | ml_rc_direct(&x->rc);
  return v;
}

static uint32_t dec_gamma(struct ml_ctx *x, uint16_t *pre, uint32_t bits) {
  return dec_gamma_low(x, dec_gamma_length(x, pre, bits));
}

static uint8_t dec_byte(struct ml_ctx *x) {
  unsigned m = 1;
  while (m < 256) m = (m << 1) | ml_rc_bit(&x->rc, &x->u.m.byte[m - 1]);
  return (uint8_t)(m - 256);
}

/* Validates an op's old-slot range: inside the source, and not further back than the window
 * behind the furthest byte read so far (reads go forward, within a bounded window). */
static int old_range_ok(struct ml_ctx *x, uint32_t len) {
  uint32_t window = 1u << x->log2_window;
  if (x->old_pos > x->source_size || len > x->source_size - x->old_pos) return 0;
  if (x->old_hw > window && x->old_pos < x->old_hw - window) return 0;
  if (x->old_pos + len > x->old_hw) x->old_hw = x->old_pos + len;
  return 1;
}

static int decode_arg(struct ml_ctx *x) {
  if (x->kind == OP_SEEK) {
    x->seek_negative = (uint8_t)ml_rc_bit(&x->rc, &x->u.m.seek_sign);
    x->op_left = dec_gamma_length(x, x->u.m.seek, SEEK_BITS);
    x->phase = PHASE_SEEK_LOW;
    return x->rc.dry ? fail(x, MALLORN_LITE_E_CORRUPT) : 0;
  }
  x->op_left = dec_gamma(x, x->u.m.len[x->kind == OP_MATCH ? 3 : x->kind], LEN_BITS);
  if (x->rc.dry || x->op_left > x->block_out_end - x->out_pos) return fail(x, MALLORN_LITE_E_CORRUPT);
  if ((x->kind == OP_COPY || x->kind == OP_ADD) && !old_range_ok(x, x->op_left)) return fail(x, MALLORN_LITE_E_CORRUPT);
  x->phase = x->kind == OP_MATCH ? PHASE_DIST : PHASE_RUN;
  return 0;
}

static int decode_seek_low(struct ml_ctx *x) {
  uint32_t v = dec_gamma_low(x, x->op_left);
  x->op_left = 0;
  if (x->rc.dry) return fail(x, MALLORN_LITE_E_CORRUPT);
  if (x->seek_negative ? v > x->old_pos : v > x->source_size - x->old_pos) return fail(x, MALLORN_LITE_E_CORRUPT);
  x->old_pos = x->seek_negative ? x->old_pos - v : x->old_pos + v;
  x->phase = PHASE_KIND;
  return 0;
}

/* A match copies earlier output: `dist` back, at most 2^16 - 1, never before the image start. */
static int decode_dist(struct ml_ctx *x) {
  x->dist = dec_gamma(x, x->u.m.dist, DIST_BITS);
  if (x->rc.dry || x->dist > x->out_pos) return fail(x, MALLORN_LITE_E_CORRUPT);
  x->phase = PHASE_RUN;
  return 0;
}

/* Appends n bytes of earlier output: from the write buffer when they are still there, else read
 * back from the new slot. n <= dist, so source and destination never overlap within one call. */
static int copy_back(struct ml_ctx *x, uint32_t n) {
  uint32_t src = x->out_pos - x->dist, flushed = x->out_pos - x->wfill;
  if (src >= flushed) {
    memmove(x->wbuf + x->wfill, x->wbuf + (src - flushed), n);
  } else if (x->new_slot->ops->read(x->new_slot, src, x->wbuf + x->wfill, n) != 0) {
    return fail(x, MALLORN_LITE_E_FLASH);
  }
  return 0;
}

/* Emits the current op's bytes; returns 1 when it needs more input. */
static int run_op(struct ml_ctx *x, mallorn_lite_in *in) {
  while (x->op_left) {
    uint32_t room = WBUF - x->wfill, n = x->op_left < room ? x->op_left : room;
    if (x->kind == OP_MATCH) {
      uint32_t src = x->out_pos - x->dist, flushed = x->out_pos - x->wfill;
      if (n > x->dist) n = x->dist;
      if (src < flushed && n > flushed - src) n = flushed - src;
      if (copy_back(x, n)) return -1;
      x->wfill = (uint8_t)(x->wfill + n);
      x->op_left -= n;
      x->out_pos += n;
    } else if (x->kind == OP_COPY) {
      if (read_old(x, n)) return -1;
      x->wfill = (uint8_t)(x->wfill + n);
      x->op_left -= n;
      x->out_pos += n;
    } else {
      if (x->kind == OP_ADD && x->add_ahead == 0) {
        if (read_old(x, n)) return -1;
        x->add_ahead = (uint8_t)n;
      }
      la_fill(x, in);
      if (!la_ready(x, 8)) return 1;
      if (x->kind == OP_ADD) {
        x->wbuf[x->wfill] = (uint8_t)(x->wbuf[x->wfill] + dec_byte(x));
        x->add_ahead--;
      } else {
        x->wbuf[x->wfill] = dec_byte(x);
      }
      if (x->rc.dry) return fail(x, MALLORN_LITE_E_CORRUPT);
      x->wfill++;
      x->op_left--;
      x->out_pos++;
    }
    if (x->wfill == WBUF && flush_out(x, 0)) return -1;
  }
  x->phase = PHASE_KIND;
  return 0;
}

/* Called once a block's bytes are all consumed: checkpoint, then the next block or the end. */
static int block_boundary(struct ml_ctx *x) {
  if (x->out_pos == x->target_size) {
    if (x->consumed != x->body_end) return fail(x, MALLORN_LITE_E_CORRUPT);
    x->state = ST_DONE;
    return 0;
  }
  if (x->out_pos % x->new_slot->erase_size == 0 && checkpoint(x, 0)) return x->err;
  x->state = ST_BLOCK_LEN;
  return 0;
}

/* Decodes the current block as far as the input allows; returns 1 when it needs more input. */
static int run_block(struct ml_ctx *x, mallorn_lite_in *in) {
  for (;;) {
    int r;
    la_fill(x, in);
    if (!x->rc_ready) {
      if (!la_ready(x, 4)) return 1;
      ml_rc_init(&x->rc);
      if (x->rc.dry) return fail(x, MALLORN_LITE_E_CORRUPT);
      x->rc_ready = 1;
    }
    switch (x->phase) {
      case PHASE_KIND: {
        uint16_t *p = x->u.m.kind[x->prev_kind];
        unsigned hi;
        if (x->out_pos == x->block_out_end) {
          /* The encoder's flush pins the code to exactly 0 after exactly the block's bytes, so
           * damage to any byte of the block, even its final ones, is caught here. */
          if (x->rc.code != 0 || x->rc.la_count != 0 || x->block_in_left != 0) return fail(x, MALLORN_LITE_E_CORRUPT);
          if (block_boundary(x)) return -1;
          return 0;
        }
        if (!la_ready(x, 3)) return 1;
        hi = ml_rc_bit(&x->rc, &p[0]);
        x->kind = (uint8_t)(hi << 1 | ml_rc_bit(&x->rc, &p[1 + hi]));
        if (x->kind == OP_SEEK) x->kind = (uint8_t)(OP_SEEK + ml_rc_bit(&x->rc, &x->u.m.other[x->prev_kind]));
        if (x->rc.dry) return fail(x, MALLORN_LITE_E_CORRUPT);
        x->prev_kind = x->kind == OP_MATCH ? OP_SEEK : x->kind;
        x->phase = PHASE_ARG;
        break;
      }
      case PHASE_ARG:
        if (!la_ready(x, ML_LA_SIZE)) return 1;
        if (decode_arg(x)) return -1;
        break;
      case PHASE_SEEK_LOW:
        if (!la_ready(x, ML_LA_SIZE)) return 1;
        if (decode_seek_low(x)) return -1;
        break;
      case PHASE_DIST:
        if (!la_ready(x, ML_LA_SIZE)) return 1;
        if (decode_dist(x)) return -1;
        break;
      default:
        r = run_op(x, in);
        if (r) return r;
        break;
    }
  }
}

static int feed_body(struct ml_ctx *x, mallorn_lite_in *in) {
  while (!x->err) {
    switch (x->state) {
      case ST_BODY_HEADER: {
        uint8_t *bh = x->rc.la; /* free until the first block */
        while (in->pos < in->size && x->consumed < x->header_size + BODY_HEADER)
          bh[x->consumed++ - x->header_size] = in->src[in->pos++];
        if (x->consumed < x->header_size + BODY_HEADER) return 1;
        if (x->body_end < x->consumed || bh[0] < 8 || bh[0] > MAX_LOG2_BLOCK || bh[1] < 8 || bh[1] > 30 || bh[2] || bh[3] != (uint8_t)(0xFF ^ bh[0] ^ bh[1]))
          return fail(x, MALLORN_LITE_E_CORRUPT);
        x->log2_block = bh[0];
        x->log2_window = bh[1];
        /* The slot is about to change: its trailer now says "updating" (and no longer "bootable"). */
        x->touched = 1;
        if (ml_journal_reset(x->new_slot, &x->jcur)) return fail(x, MALLORN_LITE_E_FLASH);
        if (checkpoint(x, 1)) return x->err;
        if (x->target_size == 0) {
          if (block_boundary(x)) return x->err;
        } else {
          x->state = ST_BLOCK_LEN;
        }
        break;
      }
      case ST_BLOCK_LEN: {
        uint32_t block = 1u << x->log2_block;
        while (in->pos < in->size && x->state == ST_BLOCK_LEN) {
          uint8_t b = in->src[in->pos++];
          x->consumed++;
          x->op_left |= (uint32_t)(b & 0x7F) << x->varint_shift;
          x->varint_shift = (uint8_t)(x->varint_shift + 7);
          if (b & 0x80) {
            if (x->varint_shift > 14) return fail(x, MALLORN_LITE_E_CORRUPT);
            continue;
          }
          if ((x->op_left && x->op_left < 4) || x->op_left > 2 * block + 64 || x->op_left > x->body_end - x->consumed)
            return fail(x, MALLORN_LITE_E_CORRUPT);
          x->block_in_left = x->op_left;
          x->varint_shift = 0;
          x->block_out_end = x->target_size - x->out_pos < block ? x->target_size : x->out_pos + block;
          x->rc.la_head = x->rc.la_count = 0;
          x->rc.dry = 0;
          reset_models(x);
          x->state = ST_BLOCK;
          x->rc_ready = x->op_left == 0;
          if (x->rc_ready) {
            /* Length 0: the whole block is one copy from the old cursor, with no coded bytes (the
             * common case between nearly identical images). The end-of-block check sees code 0. */
            x->rc.code = 0;
            x->kind = OP_COPY;
            x->op_left = x->block_out_end - x->out_pos;
            if (!old_range_ok(x, x->op_left)) return fail(x, MALLORN_LITE_E_CORRUPT);
            x->phase = PHASE_RUN;
          }
        }
        if (x->state == ST_BLOCK_LEN) return 1;
        break;
      }
      case ST_BLOCK: {
        int r = run_block(x, in);
        if (r < 0) return x->err;
        if (r) return r;
        break;
      }
      case ST_SKIP: {
        uint32_t avail = (uint32_t)(in->size - in->pos), n = x->block_in_left < avail ? x->block_in_left : avail;
        x->rc.la_count = 0;
        in->pos += n;
        x->consumed += n;
        x->block_in_left -= n;
        if (x->block_in_left) return 1;
        if (block_boundary(x)) return x->err;
        break;
      }
      default:
        return 0;
    }
  }
  return x->err;
}

int mallorn_lite_feed(struct mallorn_lite_ctx *c, mallorn_lite_in *in) {
  struct ml_ctx *x;
  int r;
  if (!c) return -MALLORN_LITE_E_ARG;
  x = C(c);
  if (x->err) return x->err;
  if (!in || (!in->src && in->size) || in->pos > in->size) return fail(x, MALLORN_LITE_E_ARG);
  if (x->state == ST_FINISHED) return fail(x, MALLORN_LITE_E_STATE);
  if (x->state == ST_HEADER && feed_header(x, in)) return x->err;
  if (x->state == ST_HEADER) return 1;
  r = feed_body(x, in);
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
  if (x->state != ST_DONE) return fail(x, MALLORN_LITE_E_STATE);
  if (flush_out(x, 1)) return x->err;
  ml_sha256_final(&x->sha, digest);
  if (ml_journal_read_last(x->new_slot, &x->jcur, &r) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  if (memcmp(digest, r.target_sha, 32) != 0) {
    ml_journal_reset(x->new_slot, &x->jcur); /* a wrong image must not be resumed or booted */
    return fail(x, MALLORN_LITE_E_HASH);
  }
  r.kind = ML_REC_PENDING; /* image size, version and target hash carried over */
  r.patch_offset = r.out_pos = r.old_pos = r.old_hw = 0;
  memset(r.sha_state, 0, sizeof r.sha_state);
  if (ml_journal_append(x->new_slot, &x->jcur, &r) != 0) return fail(x, MALLORN_LITE_E_FLASH);
  x->state = ST_FINISHED;
  return 0;
}

void mallorn_lite_abort(struct mallorn_lite_ctx *c) {
  struct ml_ctx *x;
  if (!c) return;
  x = C(c);
  /* Before the first write the slot still holds whatever it held (maybe the fallback image). */
  if (x->touched && x->state != ST_FINISHED) ml_journal_reset(x->new_slot, &x->jcur);
  fail(x, MALLORN_LITE_E_STATE);
}
