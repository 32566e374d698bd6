/* mallorn_lite keyrings: release keys that rotate, verified on the device (docs/security.md).
 *
 * The device holds the root public key (provisioned) and a keyring store: a flash area of exactly
 * two erase blocks, each holding one keyring copy (the compact binary form made by
 * `mallorn keyring export --binary`, layout in core/include/mallorn/core/keyring.hpp). Nothing is
 * parsed as JSON here and nothing is allocated: a new keyring is checked in the caller's buffer,
 * the stored one is read from flash piece by piece.
 *
 *   mallorn_lite_keyring_store(&store, blob, size, root, now);    accept + store a newer keyring
 *   mallorn_lite_require_keyring(&ctx, &store, "sensor-fw", now); patches must be signed by a key
 *                                                                 the stored keyring trusts
 * Rules (the same as the C++ agent): a keyring is accepted only when signed by the root
 * threshold of the keyring in force (or by the provisioned root when none is stored) AND by its
 * own root threshold (so a root rotation needs old and new root); its version must not be lower
 * than the stored one (an equal version only for identical bytes); with now != 0 it must not have
 * expired. now is unix seconds from a clock the application trusts, or 0 when it has none (then
 * expiry and key validity dates cannot be checked: see docs/security.md). */
#ifndef MALLORN_LITE_KEYRING_H
#define MALLORN_LITE_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "mallorn_lite.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest binary keyring the device takes (the store's erase block must hold it plus 48 bytes). */
#define MALLORN_LITE_KEYRING_MAX 4096u
/* Also returned by the keyring calls (pinned, like the others). */
#define MALLORN_LITE_E_KEYRING 12    /* malformed keyring, or none stored */
#define MALLORN_LITE_E_ROLLBACK 13   /* keyring version below the stored one */
#define MALLORN_LITE_E_EXPIRED 14    /* keyring expired at `now` */

/* Checks `blob` as the successor of the stored keyring (root_key when none is stored) and, if it
 * passes, writes it to the store block not holding the current copy. A power cut at any moment
 * leaves the previous keyring or the new one in force. Returns 0 (stored, or identical to the
 * stored one), or -MALLORN_LITE_E_*. */
int mallorn_lite_keyring_store(const struct mallorn_lite_area *store, const uint8_t *blob, uint32_t size,
                               const uint8_t root_key[32], uint64_t now);

/* Version of the keyring in force; 0 when none is stored. Returns 0 or -MALLORN_LITE_E_*. */
int mallorn_lite_keyring_version(const struct mallorn_lite_area *store, uint64_t *version);

/* Only checks (no flash writes): 0 when blob would be accepted by mallorn_lite_keyring_store. */
int mallorn_lite_keyring_check(const struct mallorn_lite_area *store, const uint8_t *blob, uint32_t size,
                               const uint8_t root_key[32], uint64_t now);

/* Instead of mallorn_lite_require_signature: the patch must be signed by a release key of the
 * stored keyring that is not revoked, lists `model` (or "*"), and (now != 0) is within its validity,
 * and the keyring must not have expired at now. `store` and `model` must stay valid until the
 * header has been fed. Ignored when resuming (the header was checked before the first write). */
int mallorn_lite_require_keyring(struct mallorn_lite_ctx *c, const struct mallorn_lite_area *store, const char *model,
                                 uint64_t now);

#ifdef __cplusplus
}
#endif
#endif
