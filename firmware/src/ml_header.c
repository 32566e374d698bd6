/* The container header, parsed as it streams in: everything it promises (check bytes, signature,
 * version, source image) is verified before the first flash write. */
#include <string.h>

#include "ml_ctx.h"
#ifdef MALLORN_LITE_ED25519
#include "ml_ed25519.h"
#include "ml_keyring.h"
#endif

/* The fixed 176 bytes are in u.hdr.buf. */
static int parse_fixed(struct ml_ctx *x) {
  const uint8_t *h = x->u.hdr.buf;
  uint64_t source_size, target_size, body_size;
  uint32_t stats_bytes, sig = (h[7] & 1u) ? 64u : 0u;
  if (memcmp(h, "MLRN", 4) != 0) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  if (h[4] != 1 || h[5] != 1 || h[12] != 2) return ml_fail(x, MALLORN_LITE_E_UNSUPPORTED);
  if (h[6] > 4 || (h[7] & ~3u) || h[14] || h[15]) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  x->header_size = le32(h + 8);
  stats_bytes = le32(h + 172);
  if (stats_bytes > (1u << 20) || x->header_size != HEADER_FIXED + stats_bytes + 4 + sig)
    return ml_fail(x, MALLORN_LITE_E_CORRUPT);
  source_size = le64(h + 16);
  target_size = le64(h + 24);
  body_size = le64(h + 112);
  if (body_size > 0xFFFFFFFFull - x->header_size) return ml_fail(x, MALLORN_LITE_E_UNSUPPORTED);
  if (x->need_signature && x->header_size > HEADER_BUF) return ml_fail(x, MALLORN_LITE_E_UNSUPPORTED);
  x->body_end = x->header_size + (uint32_t)body_size;
  if (source_size > ml_journal_image_capacity(x->old_slot)) return ml_fail(x, MALLORN_LITE_E_SOURCE);
  if (target_size > ((ml_journal_image_capacity(x->new_slot)) & ~(WBUF - 1))) return ml_fail(x, MALLORN_LITE_E_SPACE);
  x->source_size = (uint32_t)source_size;
  x->target_size = (uint32_t)target_size;
  return 0;
}

/* Everything the header promises is checked here, before the first flash write. */
static int header_complete(struct ml_ctx *x) {
  uint8_t digest[32];
  uint32_t off;
  if (x->need_signature) {
    if (!(x->u.hdr.buf[7] & 1u)) return ml_fail(x, MALLORN_LITE_E_SIGNATURE);
#ifdef MALLORN_LITE_ED25519
    if (x->u.hdr.model[0]) {
      int k = ml_keyring_verify_patch(x->u.hdr.keyring, x->u.hdr.model, (uint64_t)x->u.hdr.now[1] << 32 | x->u.hdr.now[0],
                                      x->u.hdr.buf + x->header_size - 64, x->u.hdr.buf, x->header_size - 64);
      if (k) return ml_fail(x, -k);
    } else if (!ml_ed25519_verify(x->u.hdr.buf + x->header_size - 64, x->u.hdr.public_key, x->u.hdr.buf, x->header_size - 64)) {
      return ml_fail(x, MALLORN_LITE_E_SIGNATURE);
    }
#endif
  }
  if (le64(x->u.hdr.buf + 96) < ((uint64_t)x->u.hdr.min_version[1] << 32 | x->u.hdr.min_version[0])) return ml_fail(x, MALLORN_LITE_E_DOWNGRADE);
  /* The old slot must hold exactly the source image (its hash is in the header). */
  ml_sha256_init(&x->sha);
  for (off = 0; off < x->source_size; off += ML_LA_SIZE) {
    uint32_t n = x->source_size - off < ML_LA_SIZE ? x->source_size - off : ML_LA_SIZE;
    if (x->old_slot->ops->read(x->old_slot, off, x->rc.la, n) != 0) return ml_fail(x, MALLORN_LITE_E_FLASH);
    ml_sha256_update(&x->sha, x->rc.la, n);
  }
  ml_sha256_final(&x->sha, digest);
  if (memcmp(digest, x->u.hdr.buf + 32, 32) != 0) return ml_fail(x, MALLORN_LITE_E_SOURCE);
  ml_sha256_init(&x->sha);
  x->state = ST_BODY_HEADER;
  return 0;
}

int ml_feed_header(struct ml_ctx *x, mallorn_lite_in *in) {
  while (in->pos < in->size && x->state == ST_HEADER) {
    uint8_t b = in->src[in->pos++];
    uint32_t o = x->consumed++;
    uint32_t check_at = x->header_size - 4 - ((x->u.hdr.buf[7] & 1u) ? 64u : 0u);
    if (o < HEADER_BUF) x->u.hdr.buf[o] = b;
    if (o < HEADER_FIXED) {
      ml_sha256_update(&x->sha, &b, 1);
      if (o == 3 && memcmp(x->u.hdr.buf, "MLRN", 4) != 0) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
      if (o + 1 == HEADER_FIXED && parse_fixed(x)) return x->err;
      continue;
    }
    if (o < check_at) {
      ml_sha256_update(&x->sha, &b, 1);
      continue;
    }
    if (o == check_at) ml_sha256_final(&x->sha, x->rc.la); /* rc.la is free until the body */
    if (o < check_at + 4 && b != x->rc.la[o - check_at]) return ml_fail(x, MALLORN_LITE_E_CORRUPT);
    if (o + 1 == x->header_size && header_complete(x)) return x->err;
  }
  return 0;
}

