/* The adaptive binary range decoder of the mcu body (LZMA-style: 11-bit probabilities, 32-bit
 * range, one input byte at most per decision). Input comes from the context's 32-byte lookahead
 * ring; running dry inside a block means the block is damaged (the caller checks `dry`). The
 * C++ encoder in formats/src/mcu_range_coder.hpp is its exact mirror. */
#ifndef ML_RC_H
#define ML_RC_H

#include <stdint.h>

#define ML_PROB_BITS 11
#define ML_PROB_INIT (1u << (ML_PROB_BITS - 1))
#define ML_PROB_SHIFT 4
#define ML_RC_TOP (1u << 24)
#define ML_LA_SIZE 32u /* lookahead ring: a power of two, >= the decisions of the largest unit */

struct ml_rc {
  uint32_t range;
  uint32_t code;
  uint8_t la[ML_LA_SIZE];
  uint8_t la_head;
  uint8_t la_count;
  uint8_t dry; /* set when a decision needed a byte the block does not have */
};

static inline uint8_t ml_rc_next(struct ml_rc *r) {
  uint8_t b;
  if (r->la_count == 0) {
    r->dry = 1;
    return 0;
  }
  b = r->la[r->la_head];
  r->la_head = (uint8_t)((r->la_head + 1) & (ML_LA_SIZE - 1));
  r->la_count--;
  return b;
}

static inline void ml_rc_init(struct ml_rc *r) {
  int i;
  r->range = 0xFFFFFFFFu;
  r->code = 0;
  for (i = 0; i < 4; ++i) r->code = (r->code << 8) | ml_rc_next(r);
}

static inline unsigned ml_rc_bit(struct ml_rc *r, uint16_t *p) {
  uint32_t bound = (r->range >> ML_PROB_BITS) * *p;
  unsigned bit;
  if (r->code < bound) {
    r->range = bound;
    *p = (uint16_t)(*p + (((1u << ML_PROB_BITS) - *p) >> ML_PROB_SHIFT));
    bit = 0;
  } else {
    r->code -= bound;
    r->range -= bound;
    *p = (uint16_t)(*p - (*p >> ML_PROB_SHIFT));
    bit = 1;
  }
  if (r->range < ML_RC_TOP) {
    r->range <<= 8;
    r->code = (r->code << 8) | ml_rc_next(r);
  }
  return bit;
}

/* A bit with probability 1/2 and no model (the low bits of lengths and offsets). */
static inline unsigned ml_rc_direct(struct ml_rc *r) {
  unsigned bit = 0;
  r->range >>= 1;
  if (r->code >= r->range) {
    r->code -= r->range;
    bit = 1;
  }
  if (r->range < ML_RC_TOP) {
    r->range <<= 8;
    r->code = (r->code << 8) | ml_rc_next(r);
  }
  return bit;
}

#endif
