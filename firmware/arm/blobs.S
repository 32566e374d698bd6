/* The old image, the patch and the public key, embedded read-only ("memory-mapped flash"). */
  .section .rodata.blobs, "a"
  .balign 16
  .global old_image, old_image_end, patch_blob, patch_blob_end
old_image:
  .incbin OLD_PATH
old_image_end:
  .balign 16
patch_blob:
  .incbin PATCH_PATH
patch_blob_end:
#ifdef HAVE_PUBKEY
  .balign 4
  .global pubkey_blob
pubkey_blob:
  .incbin PUBKEY_PATH
#endif
