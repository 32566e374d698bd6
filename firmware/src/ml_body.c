/* The mcu body: blocks of range-coded ops (copy / add / literal / seek / match), decoded in units
 * that never need more than the 32-byte lookahead, so any split of the input gives the same result. */
#include <string.h>

#include "ml_ctx.h"

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
    return x->rc.dry ? ml_fail(x, MALLORN_LITE_E_CORRUPT) : 0;
  }
  x->op_left = dec_gamma(x, x->u.m.len[x->kind == OP_MATCH ? 3 : x->kind], LEN_BITS);
  if (x->rc.dry || x->op_left > x->block_out_end - x->out_pos) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  if ((x->kind == OP_COPY || x->kind == OP_ADD) && !old_range_ok(x, x->op_left)) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  x->phase = x->kind == OP_MATCH ? PHASE_DIST : PHASE_RUN;
  return 0;
}

static int decode_seek_low(struct ml_ctx *x) {
  uint32_t v = dec_gamma_low(x, x->op_left);
  x->op_left = 0;
  if (x->rc.dry) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  if (x->seek_negative ? v > x->old_pos : v > x->source_size - x->old_pos) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  x->old_pos = x->seek_negative ? x->old_pos - v : x->old_pos + v;
  x->phase = PHASE_KIND;
  return 0;
}

/* A match copies earlier output: `dist` back, at most 2^16 - 1, never before the image start. */
static int decode_dist(struct ml_ctx *x) {
  x->dist = dec_gamma(x, x->u.m.dist, DIST_BITS);
  if (x->rc.dry || x->dist > x->out_pos) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
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
    return ml_fail(x, MALLORN_LITE_E_FLASH);
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
      if (ml_read_old(x, n)) return -1;
      x->wfill = (uint8_t)(x->wfill + n);
      x->op_left -= n;
      x->out_pos += n;
    } else {
      if (x->kind == OP_ADD && x->add_ahead == 0) {
        if (ml_read_old(x, n)) return -1;
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
      if (x->rc.dry) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
      x->wfill++;
      x->op_left--;
      x->out_pos++;
    }
    if (x->wfill == WBUF && ml_flush_out(x, 0)) return -1;
  }
  x->phase = PHASE_KIND;
  return 0;
}

/* Called once a block's bytes are all consumed: checkpoint, then the next block or the end. */
static int block_boundary(struct ml_ctx *x) {
  if (x->out_pos == x->target_size) {
    if (x->consumed != x->body_end) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
    x->state = ST_DONE;
    return 0;
  }
  if (x->out_pos % x->new_slot->erase_size == 0 && ml_checkpoint(x, 0)) return x->err;
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
      if (x->rc.dry) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
      x->rc_ready = 1;
    }
    switch (x->phase) {
      case PHASE_KIND: {
        uint16_t *p = x->u.m.kind[x->prev_kind];
        unsigned hi;
        if (x->out_pos == x->block_out_end) {
          /* The encoder's flush pins the code to exactly 0 after exactly the block's bytes, so
           * damage to any byte of the block, even its final ones, is caught here. */
          if (x->rc.code != 0 || x->rc.la_count != 0 || x->block_in_left != 0) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
          if (block_boundary(x)) return -1;
          return 0;
        }
        if (!la_ready(x, 3)) return 1;
        hi = ml_rc_bit(&x->rc, &p[0]);
        x->kind = (uint8_t)(hi << 1 | ml_rc_bit(&x->rc, &p[1 + hi]));
        if (x->kind == OP_SEEK) x->kind = (uint8_t)(OP_SEEK + ml_rc_bit(&x->rc, &x->u.m.other[x->prev_kind]));
        if (x->rc.dry) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
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

int ml_feed_body(struct ml_ctx *x, mallorn_lite_in *in) {
  while (!x->err) {
    switch (x->state) {
      case ST_BODY_HEADER: {
        uint8_t *bh = x->rc.la; /* free until the first block */
        while (in->pos < in->size && x->consumed < x->header_size + BODY_HEADER)
          bh[x->consumed++ - x->header_size] = in->src[in->pos++];
        if (x->consumed < x->header_size + BODY_HEADER) return 1;
        if (x->body_end < x->consumed || bh[0] < 8 || bh[0] > MAX_LOG2_BLOCK || bh[1] < 8 || bh[1] > 30 || bh[2] || bh[3] != (uint8_t)(0xFF ^ bh[0] ^ bh[1]))
          return ml_fail(x, MALLORN_LITE_E_CORRUPT);
        x->log2_block = bh[0];
        x->log2_window = bh[1];
        /* The slot is about to change: its trailer now says "updating" (and no longer "bootable"). */
        x->touched = 1;
        if (ml_journal_reset(x->new_slot, &x->jcur)) return ml_fail(x, MALLORN_LITE_E_FLASH);
        if (ml_checkpoint(x, 1)) return x->err;
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
            if (x->varint_shift > 14) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
            continue;
          }
          if ((x->op_left && x->op_left < 4) || x->op_left > 2 * block + 64 || x->op_left > x->body_end - x->consumed)
            return ml_fail(x, MALLORN_LITE_E_CORRUPT);
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
            if (!old_range_ok(x, x->op_left)) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
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

