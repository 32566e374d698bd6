/* Verify-only Ed25519 (RFC 8032) for mallorn_lite, derived from TweetNaCl (Bernstein, van
 * Gastel, Janssen, Lange, Schwabe, Smetsers; public domain). Constant-time is not needed for
 * verification; small code is. Compiled only with MALLORN_LITE_ED25519. */
#ifndef ML_ED25519_H
#define ML_ED25519_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when sig (64 bytes) is a valid signature of msg by public_key (32 bytes), else 0.
 * Rejects non-canonical S (S >= L), as OpenSSL does. */
int ml_ed25519_verify(const uint8_t sig[64], const uint8_t public_key[32], const uint8_t *msg, size_t len);

#ifdef __cplusplus
}
#endif
#endif
