#include "ml_sha256.h"

#include <string.h>

static const uint32_t k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A 16-word rolling schedule keeps the stack small (64 bytes instead of 256). */
static void compress(uint32_t h[8], const uint8_t block[64]) {
  uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  int i;
  for (i = 0; i < 16; ++i) w[i] = load_be32(block + 4 * i);
  for (i = 0; i < 64; ++i) {
    uint32_t t1, t2;
    if (i >= 16) {
      uint32_t w15 = w[(i + 1) & 15], w2 = w[(i + 14) & 15];
      uint32_t s0 = ROR(w15, 7) ^ ROR(w15, 18) ^ (w15 >> 3);
      uint32_t s1 = ROR(w2, 17) ^ ROR(w2, 19) ^ (w2 >> 10);
      w[i & 15] += s0 + s1 + w[(i + 9) & 15];
    }
    t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + k256[i] + w[i & 15];
    t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

void ml_sha256_init(struct ml_sha256 *s) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof iv);
  s->count = 0;
}

void ml_sha256_update(struct ml_sha256 *s, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  size_t fill = (size_t)(s->count & 63);
  s->count += len;
  if (fill) {
    size_t take = 64 - fill < len ? 64 - fill : len;
    memcpy(s->buf + fill, p, take);
    p += take;
    len -= take;
    if (fill + take < 64) return;
    compress(s->h, s->buf);
  }
  for (; len >= 64; p += 64, len -= 64) compress(s->h, p);
  if (len) memcpy(s->buf, p, len);
}

void ml_sha256_final(struct ml_sha256 *s, uint8_t out[32]) {
  uint64_t bits = s->count * 8;
  size_t fill = (size_t)(s->count & 63);
  int i;
  s->buf[fill++] = 0x80;
  if (fill > 56) {
    memset(s->buf + fill, 0, 64 - fill);
    compress(s->h, s->buf);
    fill = 0;
  }
  memset(s->buf + fill, 0, 56 - fill);
  for (i = 0; i < 8; ++i) s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  compress(s->h, s->buf);
  for (i = 0; i < 8; ++i) store_be32(out + 4 * i, s->h[i]);
}

void ml_sha256_save(const struct ml_sha256 *s, uint8_t out[32]) {
  int i;
  for (i = 0; i < 8; ++i) store_be32(out + 4 * i, s->h[i]);
}

void ml_sha256_restore(struct ml_sha256 *s, const uint8_t in[32], uint64_t count) {
  int i;
  for (i = 0; i < 8; ++i) s->h[i] = load_be32(in + 4 * i);
  s->count = count;
}
