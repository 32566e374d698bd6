#include "ml_journal.h"

#include <string.h>

#include "ml_sha256.h"

static const uint8_t rec_magic[4] = {'M', 'L', 'J', '1'};

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void check_bytes(const uint8_t *raw, uint8_t out[4]) {
  struct ml_sha256 s;
  uint8_t d[32];
  ml_sha256_init(&s);
  ml_sha256_update(&s, raw, ML_REC_SIZE - 4);
  ml_sha256_final(&s, d);
  memcpy(out, d, 4);
}

static void encode(const struct ml_record *r, uint8_t raw[ML_REC_SIZE]) {
  memset(raw, 0, ML_REC_SIZE);
  memcpy(raw, rec_magic, 4);
  raw[4] = r->kind;
  raw[5] = r->log2_block;
  raw[6] = r->log2_window;
  put32(raw + 8, r->seq);
  put32(raw + 12, r->image_size);
  put32(raw + 16, r->source_size);
  put32(raw + 20, r->header_size);
  put32(raw + 24, r->body_size);
  put32(raw + 28, r->patch_offset);
  put32(raw + 32, r->out_pos);
  put32(raw + 36, r->old_pos);
  put32(raw + 40, r->old_hw);
  put32(raw + 48, (uint32_t)r->version);
  put32(raw + 52, (uint32_t)(r->version >> 32));
  memcpy(raw + 56, r->sha_state, 32);
  memcpy(raw + 88, r->target_sha, 32);
  check_bytes(raw, raw + 124);
}

static int decode(const uint8_t raw[ML_REC_SIZE], struct ml_record *r) {
  uint8_t check[4];
  if (memcmp(raw, rec_magic, 4) != 0) return 0;
  check_bytes(raw, check);
  if (memcmp(check, raw + 124, 4) != 0) return 0;
  if (raw[4] < ML_REC_UPDATING || raw[4] > ML_REC_REVERTED) return 0;
  r->kind = raw[4];
  r->log2_block = raw[5];
  r->log2_window = raw[6];
  r->seq = get32(raw + 8);
  r->image_size = get32(raw + 12);
  r->source_size = get32(raw + 16);
  r->header_size = get32(raw + 20);
  r->body_size = get32(raw + 24);
  r->patch_offset = get32(raw + 28);
  r->out_pos = get32(raw + 32);
  r->old_pos = get32(raw + 36);
  r->old_hw = get32(raw + 40);
  r->version = (uint64_t)get32(raw + 48) | ((uint64_t)get32(raw + 52) << 32);
  memcpy(r->sha_state, raw + 56, 32);
  memcpy(r->target_sha, raw + 88, 32);
  return 1;
}

static int is_pow2(uint32_t v) { return v && (v & (v - 1)) == 0; }

int ml_journal_check_geometry(const struct mallorn_lite_area *a) {
  if (!a || !a->ops || !a->ops->read || !a->ops->write || !a->ops->erase) return -MALLORN_LITE_E_ARG;
  if (!is_pow2(a->erase_size) || a->erase_size < 256 || !is_pow2(a->write_align) || a->write_align > 32)
    return -MALLORN_LITE_E_ARG;
  if (a->size % a->erase_size != 0 || a->size < 3 * a->erase_size) return -MALLORN_LITE_E_ARG;
  return 0;
}

uint32_t ml_journal_image_capacity(const struct mallorn_lite_area *a) { return a->size - 2 * a->erase_size; }

static uint32_t block_offset(const struct mallorn_lite_area *a, unsigned block) {
  return ml_journal_image_capacity(a) + block * a->erase_size;
}

static uint32_t records_per_block(const struct mallorn_lite_area *a) { return a->erase_size / ML_REC_SIZE; }

int ml_journal_scan(const struct mallorn_lite_area *a, struct ml_record *newest, struct ml_journal_cursor *cur) {
  uint8_t raw[ML_REC_SIZE];
  struct ml_record r;
  unsigned block;
  uint32_t i, per = records_per_block(a);
  int found = 0;
  cur->seq = 0;
  cur->block = 0;
  cur->index = 0;
  for (block = 0; block < 2; ++block) {
    for (i = 0; i < per; ++i) {
      if (a->ops->read(a, block_offset(a, block) + i * ML_REC_SIZE, raw, ML_REC_SIZE) != 0) return -MALLORN_LITE_E_FLASH;
      if (!decode(raw, &r)) continue;
      if (!found || r.seq > cur->seq) {
        found = 1;
        cur->seq = r.seq;
        cur->block = (uint8_t)block;
        cur->index = (uint16_t)(i + 1);
        if (newest) *newest = r;
      }
    }
  }
  return found;
}

static int slot_is_blank(const struct mallorn_lite_area *a, uint32_t off, int *blank) {
  uint8_t raw[ML_REC_SIZE];
  uint32_t i;
  if (a->ops->read(a, off, raw, ML_REC_SIZE) != 0) return -MALLORN_LITE_E_FLASH;
  *blank = 1;
  for (i = 0; i < ML_REC_SIZE; ++i)
    if (raw[i] != 0xFF) *blank = 0;
  return 0;
}

int ml_journal_append(const struct mallorn_lite_area *a, struct ml_journal_cursor *cur, struct ml_record *r) {
  uint8_t raw[ML_REC_SIZE];
  int blank = 0, rc;
  if (cur->index < records_per_block(a)) {
    rc = slot_is_blank(a, block_offset(a, cur->block) + cur->index * ML_REC_SIZE, &blank);
    if (rc) return rc;
  }
  if (!blank) {
    /* Full, or a torn earlier write sits where the next record would go: continue in the other
     * block. The newest complete record stays in this one until the new record is written. */
    cur->block ^= 1u;
    cur->index = 0;
    if (a->ops->erase(a, block_offset(a, cur->block), a->erase_size) != 0) return -MALLORN_LITE_E_FLASH;
  }
  r->seq = cur->seq + 1;
  encode(r, raw);
  if (a->ops->write(a, block_offset(a, cur->block) + cur->index * ML_REC_SIZE, raw, ML_REC_SIZE) != 0)
    return -MALLORN_LITE_E_FLASH;
  cur->seq = r->seq;
  cur->index++;
  return 0;
}

int ml_journal_read_last(const struct mallorn_lite_area *a, const struct ml_journal_cursor *cur, struct ml_record *r) {
  uint8_t raw[ML_REC_SIZE];
  if (cur->index == 0) return -MALLORN_LITE_E_STATE;
  if (a->ops->read(a, block_offset(a, cur->block) + (cur->index - 1u) * ML_REC_SIZE, raw, ML_REC_SIZE) != 0)
    return -MALLORN_LITE_E_FLASH;
  return decode(raw, r) ? 0 : -MALLORN_LITE_E_CORRUPT;
}

int ml_journal_reset(const struct mallorn_lite_area *a, struct ml_journal_cursor *cur) {
  /* Block 1 first: until block 0 is erased too, a reader still sees whatever block 0 held. */
  if (a->ops->erase(a, block_offset(a, 1), a->erase_size) != 0) return -MALLORN_LITE_E_FLASH;
  if (a->ops->erase(a, block_offset(a, 0), a->erase_size) != 0) return -MALLORN_LITE_E_FLASH;
  cur->seq = 0;
  cur->block = 0;
  cur->index = 0;
  return 0;
}
