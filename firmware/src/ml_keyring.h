/* Internal to mallorn_lite: the patch-signature check against the stored keyring (ml_keyring.c),
 * called by the header parser. */
#ifndef ML_KEYRING_H
#define ML_KEYRING_H

#include <stdint.h>

#include "mallorn_lite_keyring.h"

/* store_ref: the bytes of a `const struct mallorn_lite_area *` (see ml_ctx.h). 0 when sig over msg[0..len) is by a release key the stored keyring trusts for `model` at `now`;
 * else -MALLORN_LITE_E_SIGNATURE, -E_EXPIRED, -E_KEYRING (none stored) or -E_FLASH. */
int ml_keyring_verify_patch(const uint8_t *store_ref, const char *model, uint64_t now, const uint8_t sig[64],
                            const uint8_t *msg, uint32_t len);

#endif
