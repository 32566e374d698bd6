/* The flash HAL a port supplies to mallorn_lite (MCUboot-like: read / write / erase / alignment
 * on an opaque area). mallorn_lite never touches flash any other way.
 *
 * Rules the library follows, so a port may rely on them:
 *  - erase() is called with an offset and length that are multiples of erase_size;
 *  - write() is called with an offset and length that are multiples of write_align, only on
 *    bytes erased since they were last written (erase-before-write);
 *  - read() may be called on any range inside the area.
 * Each function returns 0 on success and a negative value on failure. */
#ifndef MALLORN_LITE_FLASH_H
#define MALLORN_LITE_FLASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mallorn_lite_area;

struct mallorn_lite_flash_ops {
  int (*read)(const struct mallorn_lite_area *a, uint32_t off, void *dst, uint32_t len);
  int (*write)(const struct mallorn_lite_area *a, uint32_t off, const void *src, uint32_t len);
  int (*erase)(const struct mallorn_lite_area *a, uint32_t off, uint32_t len);
};

/* One slot. size and erase_size are in bytes; erase_size and write_align are powers of two,
 * write_align <= 32 and erase_size >= 256. The last two erase blocks of a slot are its trailer
 * (the journal and the slot state); the image occupies the rest. `user` is the port's handle. */
struct mallorn_lite_area {
  const struct mallorn_lite_flash_ops *ops;
  void *user;
  uint32_t size;
  uint32_t erase_size;
  uint32_t write_align;
};

#ifdef __cplusplus
}
#endif
#endif
