#!/usr/bin/env bash
# Builds mallorn_lite for Cortex-M4 with arm-none-eabi-gcc and, for each pair given, embeds the
# old image and a signed mcu patch (made by `mallorn diff --profile mcu`) in a test image that
# qemu-system-arm -M mps2-an386 runs; the image prints PASS after checking the target hash.
# usage: qemu-test.sh FIRMWARE_DIR WORK_DIR MALLORN_BIN PAIR_DIR...
set -euo pipefail
fw=$1 work=$2 mallorn=$3
shift 3
for tool in arm-none-eabi-gcc qemu-system-arm; do
  command -v $tool >/dev/null || { echo "qemu-test: $tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
mkdir -p "$work"
"$mallorn" keygen -o "$work/key" >/dev/null
for pair in "$@"; do
  name=$(basename "$pair")
  old=$(ls "$pair"/old.*) new=$(ls "$pair"/new.*)
  "$mallorn" diff "$old" "$new" -o "$work/$name.mlrn" --profile mcu --sign "$work/key.key" >/dev/null
  build="$work/build-$name"
  cmake -S "$fw" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$fw/cmake/arm-none-eabi.cmake" -DCMAKE_BUILD_TYPE=MinSizeRel \
    -DMALLORN_LITE_QEMU_OLD="$old" -DMALLORN_LITE_QEMU_PATCH="$work/$name.mlrn" \
    -DMALLORN_LITE_QEMU_PUBKEY="$work/key.pub" \
    -DMALLORN_LITE_QEMU_TARGET_SHA="$(sha256sum "$new" | cut -c1-64)" >/dev/null
  cmake --build "$build" -j2 >/dev/null
  # Semihosting output arrives on stderr; the image's exit code is qemu's.
  status=0
  out=$(timeout 120 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
          -semihosting-config enable=on,target=native -kernel "$build/arm/mallorn_lite_qemu.elf" 2>&1) || status=$?
  echo "$name: $out"
  [ $status -eq 0 ] && grep -q '^PASS' <<<"$out" || { echo "qemu-test: $name did not pass (exit $status)" >&2; exit 1; }
done

# Keyrings on the Cortex-M4 (firmware/arm/qemu_keyring_main.c), with the last pair: K1 applies under
# keyring v1, v2 revokes K1 and adds K2, v1 again is a rollback, expiry, root rotation (v3 signed by
# the old and the new root) stored with a power cut at every flash operation.
kdir="$work/keyring"
mkdir -p "$kdir"
for k in root root2 k1 k2; do "$mallorn" keygen -o "$kdir/$k" >/dev/null; done
cp "$old" "$kdir/old"
cp "$kdir/root.pub" "$kdir/root"
"$mallorn" diff "$old" "$new" -o "$kdir/k1" --profile mcu --sign "$kdir/k1.key" >/dev/null
"$mallorn" diff "$old" "$new" -o "$kdir/k2" --profile mcu --sign "$kdir/k2.key" >/dev/null
(
  cd "$kdir"
  "$mallorn" keyring init -o ring.json --root root.pub --expires 30 >/dev/null
  "$mallorn" keyring add-key ring.json --key k1.pub --models sensor-fw >/dev/null
  "$mallorn" keyring sign ring.json --key root.key >/dev/null
  "$mallorn" keyring export ring.json --binary -o v1 >/dev/null
  "$mallorn" keyring revoke ring.json --key k1.pub >/dev/null
  "$mallorn" keyring add-key ring.json --key k2.pub --models sensor-fw >/dev/null
  "$mallorn" keyring sign ring.json --key root.key >/dev/null
  "$mallorn" keyring export ring.json --binary -o v2 >/dev/null
  "$mallorn" keyring rotate-root ring.json --root root2.pub >/dev/null
  "$mallorn" keyring sign ring.json --key root.key >/dev/null
  "$mallorn" keyring sign ring.json --key root2.key >/dev/null
  "$mallorn" keyring export ring.json --binary -o v3 >/dev/null
)
build="$work/build-keyring"
cmake -S "$fw" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$fw/cmake/arm-none-eabi.cmake" -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DMALLORN_LITE_QEMU_KEYRING_DIR="$kdir" -DMALLORN_LITE_QEMU_NOW="$(date +%s)" >/dev/null
cmake --build "$build" -j2 >/dev/null
status=0
out=$(timeout 240 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$build/arm/mallorn_lite_qemu_keyring.elf" 2>&1) || status=$?
echo "keyring: $out"
[ $status -eq 0 ] && grep -q '^PASS' <<<"$out" || { echo "qemu-test: the keyring image did not pass (exit $status)" >&2; exit 1; }
