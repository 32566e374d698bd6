/* The slot trailer: the last two erase blocks of a slot hold an append-only log of 128-byte
 * records (layout in docs/patch-format.md, "Slot trailer"). The record with the highest sequence
 * number whose check bytes match is the slot's state; a torn write fails its check and is
 * ignored, so the previous record stands. When a block is full the other one is erased and the
 * log continues there (ping-pong), so a power cut never loses the newest complete record. */
#ifndef ML_JOURNAL_H
#define ML_JOURNAL_H

#include <stdint.h>

#include "mallorn_lite.h"

#define ML_REC_SIZE 128u

enum ml_record_kind {
  ML_REC_UPDATING = MALLORN_LITE_SLOT_UPDATING,
  ML_REC_PENDING = MALLORN_LITE_SLOT_PENDING,
  ML_REC_TRIED = MALLORN_LITE_SLOT_TRIED,
  ML_REC_CONFIRMED = MALLORN_LITE_SLOT_CONFIRMED,
  ML_REC_REVERTED = MALLORN_LITE_SLOT_REVERTED
};

/* A decoded record. Kept on the stack only (the context holds just the cursor). */
struct ml_record {
  uint8_t kind;
  uint8_t log2_block;   /* UPDATING: the body's block size */
  uint8_t log2_window;  /* UPDATING: the body's old-slot window */
  uint32_t seq;
  uint32_t image_size;  /* target size */
  uint32_t source_size;
  uint32_t header_size;
  uint32_t body_size;
  uint32_t patch_offset; /* UPDATING: patch offset of the next block frame */
  uint32_t out_pos;      /* UPDATING: output bytes written and hashed (an erase-block boundary) */
  uint32_t old_pos;      /* UPDATING: old-slot cursor */
  uint32_t old_hw;       /* UPDATING: furthest old-slot byte read */
  uint64_t version;      /* target version */
  uint8_t sha_state[32]; /* UPDATING: SHA-256 chaining value of the first out_pos bytes */
  uint8_t target_sha[32];
};

/* Where the next record goes. */
struct ml_journal_cursor {
  uint32_t seq;    /* sequence number of the newest record (0: none) */
  uint16_t index;  /* record slot in the block */
  uint8_t block;   /* 0 or 1 */
};

/* 0 when the area can hold a trailer, else -MALLORN_LITE_E_ARG. */
int ml_journal_check_geometry(const struct mallorn_lite_area *a);
/* Bytes of a slot available to the image (everything before the trailer). */
uint32_t ml_journal_image_capacity(const struct mallorn_lite_area *a);
/* Finds the newest valid record. Returns 1 (found, *newest filled), 0 (none) or -E_*. */
int ml_journal_scan(const struct mallorn_lite_area *a, struct ml_record *newest, struct ml_journal_cursor *cur);
/* Appends r (its seq is set here). Returns 0 or -E_*. */
int ml_journal_append(const struct mallorn_lite_area *a, struct ml_journal_cursor *cur, struct ml_record *r);
/* Reads back the record just before the cursor (the newest one). Returns 0 or -E_*. */
int ml_journal_read_last(const struct mallorn_lite_area *a, const struct ml_journal_cursor *cur, struct ml_record *r);
/* Erases both trailer blocks: the slot becomes EMPTY. */
int ml_journal_reset(const struct mallorn_lite_area *a, struct ml_journal_cursor *cur);

#endif
