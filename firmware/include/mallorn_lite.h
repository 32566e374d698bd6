/* mallorn_lite: applies Mallorn profile-1 (mcu) patches on a microcontroller.
 *
 * C99, no heap, no dependencies. The caller owns every buffer: the context is a fixed-size
 * struct it allocates (statically, normally), the patch arrives in chunks of any size, and the
 * flash is reached only through the HAL in mallorn_lite_flash.h. Patch format:
 * docs/patch-format.md ("Profile 1 (mcu)").
 *
 *   mallorn_lite_init(&ctx, &old_slot, &new_slot);        resumes an interrupted apply, if any
 *   skip = mallorn_lite_resume_offset(&ctx);              patch offset of the next byte to feed
 *   while ((r = mallorn_lite_feed(&ctx, &in)) > 0) ...     0 done, >0 wants more, <0 error
 *   r = mallorn_lite_finish(&ctx);                         target hash checked, slot marked good
 *
 * Failure is sticky: after any negative return every later call returns the same code.
 * mallorn_lite_abort() rolls the new slot back to "empty" (its trailer is erased). */
#ifndef MALLORN_LITE_H
#define MALLORN_LITE_H

#include <stddef.h>
#include <stdint.h>

#include "mallorn_lite_flash.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (returned negated). Pinned: they appear in device reports. */
#define MALLORN_LITE_E_ARG 1          /* bad argument or slot geometry */
#define MALLORN_LITE_E_FLASH 2        /* the HAL reported a failure */
#define MALLORN_LITE_E_CORRUPT 3      /* malformed or damaged patch */
#define MALLORN_LITE_E_UNSUPPORTED 4  /* container version, profile, method or size this build cannot take */
#define MALLORN_LITE_E_SOURCE 5       /* the old slot is not the image the patch applies to */
#define MALLORN_LITE_E_HASH 6         /* the output's SHA-256 differs from the target hash */
#define MALLORN_LITE_E_SIGNATURE 7    /* a signature was required and is missing or invalid */
#define MALLORN_LITE_E_SPACE 8        /* the target does not fit in the new slot */
#define MALLORN_LITE_E_DOWNGRADE 9    /* target version below the configured minimum */
#define MALLORN_LITE_E_STATE 10       /* call out of order (e.g. finish before the patch ended) */
#define MALLORN_LITE_E_NO_IMAGE 11    /* boot helper: no slot holds a bootable image */

/* Bytes of the context; the RAM budget is 1 KiB including every buffer (checked at compile time). */
#define MALLORN_LITE_CTX_SIZE 1024

struct mallorn_lite_ctx {
  /* Private state; only mallorn_lite.c looks inside. */
  union {
    uint64_t align_;
    unsigned char bytes_[MALLORN_LITE_CTX_SIZE];
  } opaque_;
};

typedef struct {
  const uint8_t *src;
  size_t size;
  size_t pos; /* advanced by mallorn_lite_feed */
} mallorn_lite_in;

/* Prepares an apply from old_slot into new_slot. If the new slot's journal shows an interrupted
 * apply, the context continues it: mallorn_lite_resume_offset() then tells which patch byte to
 * feed next. Nothing is written until the patch header has been checked. Both areas must stay
 * valid until finish/abort. Returns 0 or -MALLORN_LITE_E_*. */
int mallorn_lite_init(struct mallorn_lite_ctx *c, const struct mallorn_lite_area *old_slot,
                      const struct mallorn_lite_area *new_slot);

/* Bytes of the context the library actually uses (<= MALLORN_LITE_CTX_SIZE); for reports. */
size_t mallorn_lite_context_used(void);

/* Offset in the patch file of the next byte mallorn_lite_feed expects (0 for a fresh apply). */
uint32_t mallorn_lite_resume_offset(const struct mallorn_lite_ctx *c);

/* Refuse patches that are not signed by this Ed25519 public key (32 bytes, copied). Call before
 * the first feed. -MALLORN_LITE_E_UNSUPPORTED when the library was built without
 * MALLORN_LITE_ED25519. Ignored when resuming (the header was checked before the first write). */
int mallorn_lite_require_signature(struct mallorn_lite_ctx *c, const uint8_t public_key[32]);

/* Refuse patches whose target version is below min_version (downgrade protection). */
int mallorn_lite_set_min_version(struct mallorn_lite_ctx *c, uint64_t min_version);

/* Consumes patch bytes from in->src[in->pos..size). Returns 0 when the whole patch has been
 * applied (call finish), >0 when it wants more input (a hint: patch bytes still expected), or
 * -MALLORN_LITE_E_*. Bytes past the end of the patch are left unconsumed. */
int mallorn_lite_feed(struct mallorn_lite_ctx *c, mallorn_lite_in *in);

/* Flushes the output, compares its SHA-256 with the target hash and, when it matches, marks the
 * new slot PENDING (that record is the last thing written). On a mismatch the new slot is rolled
 * back and -MALLORN_LITE_E_HASH returned. */
int mallorn_lite_finish(struct mallorn_lite_ctx *c);

/* Stops the apply and rolls the new slot back to empty (its trailer is erased), so the next init
 * starts afresh. The context is failed afterwards. */
void mallorn_lite_abort(struct mallorn_lite_ctx *c);

/* Short static text for an error code (positive or negative). */
const char *mallorn_lite_strerror(int code);

/* ---- A/B slots and boot ---- */

enum mallorn_lite_slot_state {
  MALLORN_LITE_SLOT_EMPTY = 0,     /* no valid trailer record */
  MALLORN_LITE_SLOT_UPDATING = 1,  /* an apply is in progress (journal checkpoints) */
  MALLORN_LITE_SLOT_PENDING = 2,   /* verified image, not yet booted */
  MALLORN_LITE_SLOT_TRIED = 3,     /* booted once, waiting for mallorn_lite_confirm() */
  MALLORN_LITE_SLOT_CONFIRMED = 4, /* the application confirmed it */
  MALLORN_LITE_SLOT_REVERTED = 5   /* booted but never confirmed: not bootable */
};

struct mallorn_lite_slot_info {
  enum mallorn_lite_slot_state state;
  uint32_t image_size;
  uint64_t version;
  uint8_t sha256[32];
};

/* Reads a slot's state from its trailer. Returns 0 or -MALLORN_LITE_E_*. */
int mallorn_lite_slot_read(const struct mallorn_lite_area *slot, struct mallorn_lite_slot_info *out);

/* Boot-time decision: a PENDING slot is marked TRIED and chosen; a TRIED slot (booted before and
 * never confirmed) is marked REVERTED; otherwise the CONFIRMED slot with the higher version wins.
 * Returns 0 for slot_a, 1 for slot_b, or -MALLORN_LITE_E_NO_IMAGE / another -MALLORN_LITE_E_*. */
int mallorn_lite_boot_select(const struct mallorn_lite_area *slot_a, const struct mallorn_lite_area *slot_b);

/* Called by the running application once it is healthy: TRIED/PENDING -> CONFIRMED. */
int mallorn_lite_confirm(const struct mallorn_lite_area *slot);

/* Factory provisioning: marks the image_size bytes already in `slot` CONFIRMED at `version`. */
int mallorn_lite_slot_install(const struct mallorn_lite_area *slot, uint32_t image_size, uint64_t version);

#ifdef __cplusplus
}
#endif
#endif
