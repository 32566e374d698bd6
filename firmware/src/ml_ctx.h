/* Internal to mallorn_lite: the context behind the opaque struct mallorn_lite_ctx, and the
 * functions the applier's files share (header, body, output). */
#ifndef ML_CTX_H
#define ML_CTX_H

#include <stdint.h>

#include "mallorn_lite.h"
#include "ml_journal.h"
#include "ml_rc.h"
#include "ml_sha256.h"

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
      uint32_t now[2]; /* keyring mode: unix seconds (0 = unknown) the keys must be valid at */
      /* Keyring mode: the store's address (memcpy'd: a pointer member would make the union
       * 8-aligned on 64-bit hosts and push the context past 1 KiB) and the model name. */
      uint8_t keyring[sizeof(void *)];
      char model[65];
    } hdr;
    struct ml_models m;
  } u;
};

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

/* Records the first failure (sticky) and returns it, negated. */
int ml_fail(struct ml_ctx *x, int code);
/* Header bytes until the header is complete and checked (ml_header.c). 0 or the error. */
int ml_feed_header(struct ml_ctx *x, mallorn_lite_in *in);
/* Body bytes (ml_body.c): 0 when done or waiting in a state that needs no input, 1 for more input,
 * or the error. */
int ml_feed_body(struct ml_ctx *x, mallorn_lite_in *in);
/* Output staging and checkpoints (ml_output.c). */
int ml_flush_out(struct ml_ctx *x, int final);
int ml_read_old(struct ml_ctx *x, uint32_t n);
int ml_checkpoint(struct ml_ctx *x, int first);

#endif
