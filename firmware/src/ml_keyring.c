/* Keyrings on the device: the compact binary form (core/include/mallorn/core/keyring.hpp) is
 * parsed with every bound checked, from the caller's buffer (a new keyring) or straight from
 * flash (the stored one), so nothing larger than a key or a model name is ever copied to RAM.
 *
 * Store: two erase blocks, one copy each: "MLKS", u32 size, u64 version, the keyring, then the
 * SHA-256 of everything before it. The valid copy with the higher version is in force; a new one
 * goes to the other block, so a torn write (bad digest) leaves the previous one in force. */
#include <string.h>

#include "ml_ctx.h"
#include "ml_ed25519.h"
#include "ml_keyring.h"
#include "ml_sha256.h"

#define KR_FIXED 40u
#define KR_MAX_ROOTS 4u
#define KR_MAX_KEYS 16u
#define KR_MAX_MODELS 8u
#define KR_MAX_NAME 64u
#define KR_MAX_REVOKED 64u
#define KR_MAX_SIGS 8u
#define STORE_HEADER 16u
#define STORE_STAGE 32u /* a multiple of every supported write alignment */

/* Bytes of a keyring: in RAM (mem) or at base in a flash area. */
struct kr_src {
  const uint8_t *mem;
  const struct mallorn_lite_area *area;
  uint32_t base;
  uint32_t size;
};

struct kr_layout {
  uint8_t threshold, roots, keys, revoked, sigs;
  uint32_t signed_size, keys_off, revoked_off, sigs_off;
  uint64_t version, issued, expires;
};

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static int kr_read(const struct kr_src *s, uint32_t off, void *dst, uint32_t len) {
  if (off > s->size || len > s->size - off) return -MALLORN_LITE_E_KEYRING;
  if (s->mem) {
    memcpy(dst, s->mem + off, len);
    return 0;
  }
  return s->area->ops->read(s->area, s->base + off, dst, len) == 0 ? 0 : -MALLORN_LITE_E_FLASH;
}

static int is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

/* Structure and limits, exactly as the C++ decoder; signatures are not looked at here. */
static int kr_parse(const struct kr_src *s, struct kr_layout *l) {
  uint8_t h[KR_FIXED], a[32], b[32], e[50], n;
  uint32_t off, i, j, m;
  int rc;
  if (s->size > MALLORN_LITE_KEYRING_MAX) return -MALLORN_LITE_E_KEYRING;
  if ((rc = kr_read(s, 0, h, KR_FIXED)) != 0) return rc;
  if (memcmp(h, "MLKR", 4) != 0 || h[4] != 1 || h[9] || h[10] || h[11]) return -MALLORN_LITE_E_KEYRING;
  l->threshold = h[5], l->roots = h[6], l->keys = h[7], l->revoked = h[8];
  l->signed_size = rd32(h + 12);
  l->version = rd64(h + 16), l->issued = rd64(h + 24), l->expires = rd64(h + 32);
  if (l->roots < 1 || l->roots > KR_MAX_ROOTS || l->threshold < 1 || l->threshold > l->roots || l->keys > KR_MAX_KEYS ||
      l->revoked > KR_MAX_REVOKED || l->version == 0 || l->expires <= l->issued)
    return -MALLORN_LITE_E_KEYRING;
  for (i = 0; i < l->roots; ++i) /* a root listed twice would count twice toward the threshold */
    for (j = i + 1; j < l->roots; ++j) {
      if ((rc = kr_read(s, KR_FIXED + 32 * i, a, 32)) != 0 || (rc = kr_read(s, KR_FIXED + 32 * j, b, 32)) != 0) return rc;
      if (!memcmp(a, b, 32)) return -MALLORN_LITE_E_KEYRING;
    }
  off = l->keys_off = KR_FIXED + 32u * l->roots;
  for (i = 0; i < l->keys; ++i) {
    if ((rc = kr_read(s, off, e, 50)) != 0) return rc;
    if (e[48] != 1 || e[49] < 1 || e[49] > KR_MAX_MODELS) return -MALLORN_LITE_E_KEYRING;
    if (rd64(e + 40) && rd64(e + 40) <= rd64(e + 32)) return -MALLORN_LITE_E_KEYRING;
    for (j = off + 50, m = 0; m < e[49]; ++m, j += 1u + n) {
      if ((rc = kr_read(s, j, &n, 1)) != 0) return rc;
      if (n < 1 || n > KR_MAX_NAME || j + 1u + n > s->size) return -MALLORN_LITE_E_KEYRING;
    }
    off = j;
  }
  for (i = 0, j = l->keys_off; i < l->keys; ++i) { /* a key listed twice: refused, as in C++ */
    uint32_t o;
    if ((rc = kr_read(s, j, a, 32)) != 0 || (rc = kr_read(s, j + 49, &n, 1)) != 0) return rc;
    for (j += 50, m = 0; m < n; ++m) {
      uint8_t len;
      if ((rc = kr_read(s, j, &len, 1)) != 0) return rc;
      j += 1u + len;
    }
    for (o = j, m = i + 1; m < l->keys; ++m) {
      uint8_t cnt, len, q;
      if ((rc = kr_read(s, o, b, 32)) != 0 || (rc = kr_read(s, o + 49, &cnt, 1)) != 0) return rc;
      if (!memcmp(a, b, 32)) return -MALLORN_LITE_E_KEYRING;
      for (o += 50, q = 0; q < cnt; ++q) {
        if ((rc = kr_read(s, o, &len, 1)) != 0) return rc;
        o += 1u + len;
      }
    }
  }
  l->revoked_off = off;
  off += 32u * l->revoked;
  if (off != l->signed_size || off >= s->size) return -MALLORN_LITE_E_KEYRING;
  if ((rc = kr_read(s, off, &l->sigs, 1)) != 0) return rc;
  l->sigs_off = off + 1;
  if (l->sigs > KR_MAX_SIGS || s->size - l->sigs_off != 96u * l->sigs) return -MALLORN_LITE_E_KEYRING;
  return 0;
}

/* How many of the roots listed in `roots` (a keyring) signed the candidate (in RAM). Each root
 * counts once. */
static int count_root_signatures(const struct kr_src *cand, const struct kr_layout *cl, const struct kr_src *roots,
                                 const struct kr_layout *rl, const uint8_t *single_root, int *count) {
  uint8_t key[32], id[32], sid[32], sig[64];
  uint32_t i, j, n = single_root ? 1u : rl->roots;
  struct ml_sha256 h;
  int rc;
  *count = 0;
  for (i = 0; i < n; ++i) {
    if (single_root) memcpy(key, single_root, 32);
    else if ((rc = kr_read(roots, KR_FIXED + 32 * i, key, 32)) != 0) return rc;
    ml_sha256_init(&h);
    ml_sha256_update(&h, key, 32);
    ml_sha256_final(&h, id);
    for (j = 0; j < cl->sigs; ++j) {
      if ((rc = kr_read(cand, cl->sigs_off + 96 * j, sid, 32)) != 0 || (rc = kr_read(cand, cl->sigs_off + 96 * j + 32, sig, 64)) != 0)
        return rc;
      if (!memcmp(sid, id, 32) && ml_ed25519_verify(sig, key, cand->mem, cl->signed_size)) {
        ++*count;
        break;
      }
    }
  }
  return 0;
}

static int store_geometry(const struct mallorn_lite_area *a) {
  if (!a || !a->ops || !a->ops->read || !a->ops->write || !a->ops->erase || !is_pow2(a->erase_size) || a->erase_size < 256 ||
      !is_pow2(a->write_align) || a->write_align > STORE_STAGE || a->size != 2 * a->erase_size)
    return -MALLORN_LITE_E_ARG;
  return 0;
}

/* The valid copy in block b: 1 (src filled), 0 (none) or -E_FLASH. */
static int store_block(const struct mallorn_lite_area *a, uint32_t b, struct kr_src *src, uint64_t *version) {
  uint8_t buf[64], digest[32];
  uint32_t base = b * a->erase_size, size, off, n;
  struct ml_sha256 h;
  if (a->ops->read(a, base, buf, STORE_HEADER) != 0) return -MALLORN_LITE_E_FLASH;
  size = rd32(buf + 4);
  if (memcmp(buf, "MLKS", 4) != 0 || size > MALLORN_LITE_KEYRING_MAX || size < KR_FIXED ||
      STORE_HEADER + size + 32 > a->erase_size)
    return 0;
  *version = rd64(buf + 8);
  ml_sha256_init(&h);
  ml_sha256_update(&h, buf, STORE_HEADER);
  for (off = 0; off < size; off += n) {
    n = size - off < sizeof buf ? size - off : (uint32_t)sizeof buf;
    if (a->ops->read(a, base + STORE_HEADER + off, buf, n) != 0) return -MALLORN_LITE_E_FLASH;
    ml_sha256_update(&h, buf, n);
  }
  ml_sha256_final(&h, digest);
  if (a->ops->read(a, base + STORE_HEADER + size, buf, 32) != 0) return -MALLORN_LITE_E_FLASH;
  if (memcmp(buf, digest, 32) != 0) return 0; /* torn or never written */
  src->mem = NULL, src->area = a, src->base = base + STORE_HEADER, src->size = size;
  return 1;
}

/* The keyring in force: 1 (src, layout and block filled), 0 (none stored), or -E_*. */
static int store_current(const struct mallorn_lite_area *a, struct kr_src *src, struct kr_layout *l, uint32_t *block) {
  struct kr_src s[2];
  uint64_t v[2] = {0, 0};
  int ok[2], b, best = -1;
  for (b = 0; b < 2; ++b) {
    ok[b] = store_block(a, (uint32_t)b, &s[b], &v[b]);
    if (ok[b] < 0) return ok[b];
    if (ok[b] && (best < 0 || v[b] > v[best])) best = b;
  }
  if (best < 0) return 0;
  *src = s[best];
  *block = (uint32_t)best;
  if (kr_parse(src, l) != 0 || l->version != v[best]) return -MALLORN_LITE_E_KEYRING; /* only we write here */
  return 1;
}

static int check_candidate(const struct mallorn_lite_area *store, const uint8_t *blob, uint32_t size, const uint8_t root_key[32],
                           uint64_t now, uint32_t *free_block) {
  struct kr_src cand = {blob, NULL, 0, size}, cur;
  struct kr_layout cl, l;
  uint32_t block = 1;
  int rc, have, count;
  if ((rc = store_geometry(store)) != 0) return rc;
  if (!blob || !root_key) return -MALLORN_LITE_E_ARG;
  if (STORE_HEADER + size + 32 > store->erase_size) return -MALLORN_LITE_E_SPACE;
  if ((rc = kr_parse(&cand, &cl)) != 0) return rc;
  if ((have = store_current(store, &cur, &l, &block)) < 0) return have;
  if (have && cl.version < l.version) return -MALLORN_LITE_E_ROLLBACK;
  if (have && cl.version == l.version) { /* the same signed content again (signatures may differ) */
    uint8_t chunk[32];
    uint32_t off, n;
    if (l.signed_size != cl.signed_size) return -MALLORN_LITE_E_SIGNATURE;
    for (off = 0; off < cl.signed_size; off += n) {
      n = cl.signed_size - off < sizeof chunk ? cl.signed_size - off : (uint32_t)sizeof chunk;
      if ((rc = kr_read(&cur, off, chunk, n)) != 0) return rc;
      if (memcmp(chunk, blob + off, n) != 0) return -MALLORN_LITE_E_SIGNATURE;
    }
    *free_block = 2; /* nothing to write */
    return 0;
  }
  if ((rc = count_root_signatures(&cand, &cl, &cur, &l, have ? NULL : root_key, &count)) != 0) return rc;
  if (count < (have ? l.threshold : 1)) return -MALLORN_LITE_E_SIGNATURE;
  if ((rc = count_root_signatures(&cand, &cl, &cand, &cl, NULL, &count)) != 0) return rc;
  if (count < cl.threshold) return -MALLORN_LITE_E_SIGNATURE;
  if (now && now >= cl.expires) return -MALLORN_LITE_E_EXPIRED;
  *free_block = have ? 1u - block : 0u;
  return 0;
}

int mallorn_lite_keyring_check(const struct mallorn_lite_area *store, const uint8_t *blob, uint32_t size,
                               const uint8_t root_key[32], uint64_t now) {
  uint32_t free_block;
  return check_candidate(store, blob, size, root_key, now, &free_block);
}

int mallorn_lite_keyring_store(const struct mallorn_lite_area *store, const uint8_t *blob, uint32_t size,
                               const uint8_t root_key[32], uint64_t now) {
  uint8_t stage[STORE_STAGE], head[STORE_HEADER], digest[32];
  uint32_t free_block, base, total, off, fill = 0, pos = 0;
  struct ml_sha256 h;
  int rc = check_candidate(store, blob, size, root_key, now, &free_block);
  if (rc || free_block == 2) return rc;
  base = free_block * store->erase_size;
  memcpy(head, "MLKS", 4);
  wr32(head + 4, size);
  memcpy(head + 8, blob + 16, 8); /* the keyring's own version field */
  ml_sha256_init(&h);
  ml_sha256_update(&h, head, STORE_HEADER);
  ml_sha256_update(&h, blob, size);
  ml_sha256_final(&h, digest);
  if (store->ops->erase(store, base, store->erase_size) != 0) return -MALLORN_LITE_E_FLASH;
  /* header, keyring, digest streamed through one aligned stage; the digest lands last, so a copy
   * is only valid once every byte before it is in flash */
  total = STORE_HEADER + size + 32;
  for (off = 0; off < total; ++off) {
    stage[fill++] = off < STORE_HEADER ? head[off] : off < STORE_HEADER + size ? blob[off - STORE_HEADER] : digest[off - STORE_HEADER - size];
    if (fill == STORE_STAGE || off + 1 == total) {
      while (fill < STORE_STAGE) stage[fill++] = 0xFF;
      if (store->ops->write(store, base + pos, stage, STORE_STAGE) != 0) return -MALLORN_LITE_E_FLASH;
      pos += STORE_STAGE;
      fill = 0;
    }
  }
  return 0;
}

int mallorn_lite_keyring_version(const struct mallorn_lite_area *store, uint64_t *version) {
  struct kr_src cur;
  struct kr_layout l;
  uint32_t block;
  int rc;
  if ((rc = store_geometry(store)) != 0 || !version) return rc ? rc : -MALLORN_LITE_E_ARG;
  rc = store_current(store, &cur, &l, &block);
  if (rc < 0) return rc;
  *version = rc ? l.version : 0;
  return 0;
}

int ml_keyring_verify_patch(const uint8_t *store_ref, const char *model, uint64_t now, const uint8_t sig[64],
                            const uint8_t *msg, uint32_t len) {
  const struct mallorn_lite_area *store;
  struct kr_src cur;
  struct kr_layout l;
  struct ml_sha256 h;
  uint8_t e[50], id[32], rid[32], name[KR_MAX_NAME], n;
  uint32_t block, off, i, j, m;
  size_t model_len = strlen(model);
  int rc;
  memcpy(&store, store_ref, sizeof store);
  rc = store_current(store, &cur, &l, &block);
  if (rc < 0) return rc;
  if (rc == 0) return -MALLORN_LITE_E_KEYRING;
  if (now && now >= l.expires) return -MALLORN_LITE_E_EXPIRED;
  for (off = l.keys_off, i = 0; i < l.keys; ++i) {
    int covers = 0, revoked = 0;
    if ((rc = kr_read(&cur, off, e, 50)) != 0) return rc;
    for (j = off + 50, m = 0; m < e[49]; ++m, j += 1u + n) {
      if ((rc = kr_read(&cur, j, &n, 1)) != 0 || (rc = kr_read(&cur, j + 1, name, n)) != 0) return rc;
      if ((n == 1 && name[0] == '*') || (n == model_len && !memcmp(name, model, n))) covers = 1;
    }
    off = j;
    if (!covers || (now && (now < rd64(e + 32) || (rd64(e + 40) && now >= rd64(e + 40))))) continue;
    ml_sha256_init(&h);
    ml_sha256_update(&h, e, 32);
    ml_sha256_final(&h, id);
    for (m = 0; m < l.revoked && !revoked; ++m) {
      if ((rc = kr_read(&cur, l.revoked_off + 32 * m, rid, 32)) != 0) return rc;
      revoked = !memcmp(rid, id, 32);
    }
    if (!revoked && ml_ed25519_verify(sig, e, msg, len)) return 0;
  }
  return -MALLORN_LITE_E_SIGNATURE;
}

int mallorn_lite_require_keyring(struct mallorn_lite_ctx *c, const struct mallorn_lite_area *store, const char *model,
                                 uint64_t now) {
  struct ml_ctx *x = (struct ml_ctx *)(void *)c->opaque_.bytes_;
  if (x->err) return x->err;
  if (x->resumed) return 0;
  if (x->state != ST_HEADER || x->consumed != 0 || !model || strlen(model) > KR_MAX_NAME || !*model || store_geometry(store) != 0)
    return ml_fail(x, MALLORN_LITE_E_ARG);
  memcpy(x->u.hdr.keyring, &store, sizeof store);
  memcpy(x->u.hdr.model, model, strlen(model) + 1);
  x->u.hdr.now[0] = (uint32_t)now;
  x->u.hdr.now[1] = (uint32_t)(now >> 32);
  x->need_signature = 1;
  return 0;
}
