/* The keyring test's inputs (qemu_keyring_main.c), embedded read-only; KR_<name> is the path of
 * <dir>/<name> (firmware/arm/CMakeLists.txt). */
  .section .rodata.keyring_blobs, "a"
#define BLOB(name, file) .balign 16; .global name, name##_end; name: .incbin file; name##_end:
  BLOB(old_image, KR_old)
  BLOB(root_pub, KR_root)
  BLOB(kr_v1, KR_v1)
  BLOB(kr_v2, KR_v2)
  BLOB(kr_v3, KR_v3)
  BLOB(patch_k1, KR_k1)
  BLOB(patch_k2, KR_k2)
