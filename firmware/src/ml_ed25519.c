/* Field arithmetic and point operations follow TweetNaCl's public-domain crypto_sign_open;
 * only verification is kept, plus an incremental SHA-512 so R || A || M needs no copy. */
#include "ml_ed25519.h"

#include <string.h>

typedef int64_t gf[16];

static const gf gf0 = {0};
static const gf gf1 = {1};
static const gf D = {0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070,
                     0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const gf D2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
                      0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const gf X = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
                     0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const gf Y = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666,
                     0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};
static const gf I = {0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43,
                     0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};
/* The group order L, little-endian bytes. */
static const int64_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                              0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                              0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

/* ---- SHA-512 ---- */

struct sha512 {
  uint64_t h[8];
  uint64_t count;
  uint8_t buf[128];
};

static const uint64_t k512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL, 0x3956c25bf348b538ULL,
    0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL, 0xd807aa98a3030242ULL, 0x12835b0145706fbeULL,
    0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL, 0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL,
    0xc19bf174cf692694ULL, 0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL, 0x983e5152ee66dfabULL,
    0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL, 0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL,
    0x06ca6351e003826fULL, 0x142929670a0e6e70ULL, 0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL,
    0x53380d139d95b3dfULL, 0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL, 0xd192e819d6ef5218ULL,
    0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL, 0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL,
    0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL, 0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL,
    0x682e6ff3d6b2b8a3ULL, 0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL, 0xca273eceea26619cULL,
    0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL, 0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL,
    0x113f9804bef90daeULL, 0x1b710b35131c471bULL, 0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL,
    0x431d67c49c100d4cULL, 0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL};

#define ROR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

static void sha512_block(uint64_t h[8], const uint8_t *p) {
  uint64_t w[16], v[8], t1, t2;
  int i, j;
  for (i = 0; i < 16; ++i) {
    w[i] = 0;
    for (j = 0; j < 8; ++j) w[i] = (w[i] << 8) | p[8 * i + j];
  }
  for (i = 0; i < 8; ++i) v[i] = h[i];
  for (i = 0; i < 80; ++i) {
    if (i >= 16) {
      uint64_t a = w[(i + 1) & 15], b = w[(i + 14) & 15];
      w[i & 15] += (ROR64(a, 1) ^ ROR64(a, 8) ^ (a >> 7)) + (ROR64(b, 19) ^ ROR64(b, 61) ^ (b >> 6)) + w[(i + 9) & 15];
    }
    t1 = v[7] + (ROR64(v[4], 14) ^ ROR64(v[4], 18) ^ ROR64(v[4], 41)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + k512[i] +
         w[i & 15];
    t2 = (ROR64(v[0], 28) ^ ROR64(v[0], 34) ^ ROR64(v[0], 39)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
    for (j = 7; j > 0; --j) v[j] = v[j - 1];
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (i = 0; i < 8; ++i) h[i] += v[i];
}

static void sha512_init(struct sha512 *s) {
  static const uint64_t iv[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                                 0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                                 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
  memcpy(s->h, iv, sizeof iv);
  s->count = 0;
}

static void sha512_update(struct sha512 *s, const uint8_t *p, size_t len) {
  while (len--) {
    s->buf[s->count++ & 127] = *p++;
    if ((s->count & 127) == 0) sha512_block(s->h, s->buf);
  }
}

static void sha512_final(struct sha512 *s, uint8_t out[64]) {
  uint64_t bits = s->count * 8;
  size_t fill = (size_t)(s->count & 127);
  int i;
  s->buf[fill++] = 0x80;
  if (fill > 112) {
    memset(s->buf + fill, 0, 128 - fill);
    sha512_block(s->h, s->buf);
    fill = 0;
  }
  memset(s->buf + fill, 0, 128 - fill);
  for (i = 0; i < 8; ++i) s->buf[120 + i] = (uint8_t)(bits >> (56 - 8 * i));
  sha512_block(s->h, s->buf);
  for (i = 0; i < 64; ++i) out[i] = (uint8_t)(s->h[i / 8] >> (56 - 8 * (i % 8)));
}

/* ---- GF(2^255 - 19), 16 limbs of 16 bits ---- */

static void set25519(gf r, const gf a) {
  int i;
  for (i = 0; i < 16; ++i) r[i] = a[i];
}

static void car25519(gf o) {
  int i;
  int64_t c;
  for (i = 0; i < 16; ++i) {
    o[i] += (int64_t)1 << 16;
    c = o[i] >> 16;
    o[(i + 1) * (i < 15)] += c - 1 + 37 * (c - 1) * (i == 15);
    o[i] -= c * 65536;
  }
}

static void sel25519(gf p, gf q, int b) {
  int64_t t, c = ~((int64_t)b - 1);
  int i;
  for (i = 0; i < 16; ++i) {
    t = c & (p[i] ^ q[i]);
    p[i] ^= t;
    q[i] ^= t;
  }
}

static void pack25519(uint8_t *o, const gf n) {
  int i, j, b;
  gf m, t;
  set25519(t, n);
  car25519(t);
  car25519(t);
  car25519(t);
  for (j = 0; j < 2; ++j) {
    m[0] = t[0] - 0xffed;
    for (i = 1; i < 15; ++i) {
      m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
      m[i - 1] &= 0xffff;
    }
    m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
    b = (int)((m[15] >> 16) & 1);
    m[14] &= 0xffff;
    sel25519(t, m, 1 - b);
  }
  for (i = 0; i < 16; ++i) {
    o[2 * i] = (uint8_t)(t[i] & 0xff);
    o[2 * i + 1] = (uint8_t)(t[i] >> 8);
  }
}

static int neq25519(const gf a, const gf b) {
  uint8_t c[32], d[32];
  pack25519(c, a);
  pack25519(d, b);
  return memcmp(c, d, 32) != 0;
}

static uint8_t par25519(const gf a) {
  uint8_t d[32];
  pack25519(d, a);
  return d[0] & 1;
}

static void unpack25519(gf o, const uint8_t *n) {
  int i;
  for (i = 0; i < 16; ++i) o[i] = n[2 * i] + ((int64_t)n[2 * i + 1] << 8);
  o[15] &= 0x7fff;
}

static void fadd(gf o, const gf a, const gf b) {
  int i;
  for (i = 0; i < 16; ++i) o[i] = a[i] + b[i];
}

static void fsub(gf o, const gf a, const gf b) {
  int i;
  for (i = 0; i < 16; ++i) o[i] = a[i] - b[i];
}

static void fmul(gf o, const gf a, const gf b) {
  int64_t t[31];
  int i, j;
  for (i = 0; i < 31; ++i) t[i] = 0;
  for (i = 0; i < 16; ++i)
    for (j = 0; j < 16; ++j) t[i + j] += a[i] * b[j];
  for (i = 0; i < 15; ++i) t[i] += 38 * t[i + 16];
  for (i = 0; i < 16; ++i) o[i] = t[i];
  car25519(o);
  car25519(o);
}

static void fsq(gf o, const gf a) { fmul(o, a, a); }

static void inv25519(gf o, const gf in) {
  gf c;
  int a;
  set25519(c, in);
  for (a = 253; a >= 0; --a) {
    fsq(c, c);
    if (a != 2 && a != 4) fmul(c, c, in);
  }
  set25519(o, c);
}

static void pow2523(gf o, const gf in) {
  gf c;
  int a;
  set25519(c, in);
  for (a = 250; a >= 0; --a) {
    fsq(c, c);
    if (a != 1) fmul(c, c, in);
  }
  set25519(o, c);
}

/* ---- points in extended coordinates (X, Y, Z, T) ---- */

static void point_add(gf p[4], gf q[4]) {
  gf a, b, c, d, t, e, f, g, h;
  fsub(a, p[1], p[0]);
  fsub(t, q[1], q[0]);
  fmul(a, a, t);
  fadd(b, p[0], p[1]);
  fadd(t, q[0], q[1]);
  fmul(b, b, t);
  fmul(c, p[3], q[3]);
  fmul(c, c, D2);
  fmul(d, p[2], q[2]);
  fadd(d, d, d);
  fsub(e, b, a);
  fsub(f, d, c);
  fadd(g, d, c);
  fadd(h, b, a);
  fmul(p[0], e, f);
  fmul(p[1], h, g);
  fmul(p[2], g, f);
  fmul(p[3], e, h);
}

static void cswap(gf p[4], gf q[4], uint8_t b) {
  int i;
  for (i = 0; i < 4; ++i) sel25519(p[i], q[i], b);
}

static void pack_point(uint8_t *r, gf p[4]) {
  gf tx, ty, zi;
  inv25519(zi, p[2]);
  fmul(tx, p[0], zi);
  fmul(ty, p[1], zi);
  pack25519(r, ty);
  r[31] ^= (uint8_t)(par25519(tx) << 7);
}

static void scalarmult(gf p[4], gf q[4], const uint8_t *s) {
  int i;
  set25519(p[0], gf0);
  set25519(p[1], gf1);
  set25519(p[2], gf1);
  set25519(p[3], gf0);
  for (i = 255; i >= 0; --i) {
    uint8_t b = (uint8_t)((s[i / 8] >> (i & 7)) & 1);
    cswap(p, q, b);
    point_add(q, p);
    point_add(p, p);
    cswap(p, q, b);
  }
}

static void scalarbase(gf p[4], const uint8_t *s) {
  gf q[4];
  set25519(q[0], X);
  set25519(q[1], Y);
  set25519(q[2], gf1);
  fmul(q[3], X, Y);
  scalarmult(p, q, s);
}

static void mod_l(uint8_t *r, int64_t x[64]) {
  int64_t carry;
  int i, j;
  for (i = 63; i >= 32; --i) {
    carry = 0;
    for (j = i - 32; j < i - 12; ++j) {
      x[j] += carry - 16 * x[i] * L[j - (i - 32)];
      carry = (x[j] + 128) >> 8;
      x[j] -= carry * 256;
    }
    x[j] += carry;
    x[i] = 0;
  }
  carry = 0;
  for (j = 0; j < 32; ++j) {
    x[j] += carry - (x[31] >> 4) * L[j];
    carry = x[j] >> 8;
    x[j] &= 255;
  }
  for (j = 0; j < 32; ++j) x[j] -= carry * L[j];
  for (i = 0; i < 32; ++i) {
    x[i + 1] += x[i] >> 8;
    r[i] = (uint8_t)(x[i] & 255);
  }
}

static void reduce(uint8_t *r) {
  int64_t x[64];
  int i;
  for (i = 0; i < 64; ++i) x[i] = r[i];
  for (i = 0; i < 64; ++i) r[i] = 0;
  mod_l(r, x);
}

/* Decodes -A from its 32-byte encoding; 0 on success. */
static int unpack_neg(gf r[4], const uint8_t p[32]) {
  gf t, chk, num, den, den2, den4, den6;
  set25519(r[2], gf1);
  unpack25519(r[1], p);
  fsq(num, r[1]);
  fmul(den, num, D);
  fsub(num, num, r[2]);
  fadd(den, r[2], den);
  fsq(den2, den);
  fsq(den4, den2);
  fmul(den6, den4, den2);
  fmul(t, den6, num);
  fmul(t, t, den);
  pow2523(t, t);
  fmul(t, t, num);
  fmul(t, t, den);
  fmul(t, t, den);
  fmul(r[0], t, den);
  fsq(chk, r[0]);
  fmul(chk, chk, den);
  if (neq25519(chk, num)) fmul(r[0], r[0], I);
  fsq(chk, r[0]);
  fmul(chk, chk, den);
  if (neq25519(chk, num)) return -1;
  if (par25519(r[0]) == (p[31] >> 7)) fsub(r[0], gf0, r[0]);
  fmul(r[3], r[0], r[1]);
  return 0;
}

/* S must be below L (RFC 8032 section 5.1.7). */
static int scalar_is_canonical(const uint8_t s[32]) {
  int i;
  for (i = 31; i >= 0; --i) {
    if (s[i] < L[i]) return 1;
    if (s[i] > L[i]) return 0;
  }
  return 0;
}

int ml_ed25519_verify(const uint8_t sig[64], const uint8_t public_key[32], const uint8_t *msg, size_t len) {
  struct sha512 hs;
  uint8_t h[64], t[32];
  gf p[4], q[4];
  if (!scalar_is_canonical(sig + 32)) return 0;
  if (unpack_neg(q, public_key)) return 0;
  sha512_init(&hs);
  sha512_update(&hs, sig, 32);
  sha512_update(&hs, public_key, 32);
  sha512_update(&hs, msg, len);
  sha512_final(&hs, h);
  reduce(h);
  scalarmult(p, q, h);
  scalarbase(q, sig + 32);
  point_add(p, q);
  pack_point(t, p);
  return memcmp(sig, t, 32) == 0;
}
