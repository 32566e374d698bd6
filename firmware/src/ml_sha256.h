/* Small SHA-256 (FIPS 180-4) for mallorn_lite: 104 bytes of state, no tables beyond the 64
 * round constants. The state words can be saved and restored at 64-byte boundaries, which is
 * how the journal resumes the output hash after a reset. */
#ifndef ML_SHA256_H
#define ML_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ml_sha256 {
  uint32_t h[8];
  uint64_t count; /* bytes hashed so far */
  uint8_t buf[64];
};

void ml_sha256_init(struct ml_sha256 *s);
void ml_sha256_update(struct ml_sha256 *s, const void *data, size_t len);
void ml_sha256_final(struct ml_sha256 *s, uint8_t out[32]);
/* The chaining value as 32 big-endian bytes (only meaningful when count % 64 == 0), and back. */
void ml_sha256_save(const struct ml_sha256 *s, uint8_t out[32]);
void ml_sha256_restore(struct ml_sha256 *s, const uint8_t in[32], uint64_t count);

#ifdef __cplusplus
}
#endif
#endif
