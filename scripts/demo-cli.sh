#!/usr/bin/env bash
# The engine on its own, without the server: build Mallorn, then take
# two real releases of a model, make a signed patch, inspect it, verify it and apply it the way a
# device would, and check the result is the new release bit for bit.
# usage: scripts/demo-cli.sh [PAIR_DIR]   (default: ../shared/models/pairs/coral-mnv2-quant_2020-to-2021a)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target mallorn

pair=${1:-$root/../shared/models/pairs/coral-mnv2-quant_2020-to-2021a}
old=$(ls "$pair"/old.* 2>/dev/null | head -1) || true
new=$(ls "$pair"/new.* 2>/dev/null | head -1) || true
[ -n "$old" ] && [ -n "$new" ] || { echo "demo-cli.sh: no old.*/new.* model pair in $pair" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=$root/build/bin/mallorn
out=$work/model.${new##*.}

echo "== pair: $(basename "$pair")"
echo "== fingerprint of the model on the device"
"$m" fingerprint "$old"
echo; echo "== release key, then a signed patch old -> new"
"$m" keygen -o "$work/release"
# Level 19 + neural: a release is diffed once and downloaded by every device, so spend the time.
"$m" diff "$old" "$new" -o "$work/update.mlrn" --level 19 --neural --target-version 2
"$m" sign "$work/update.mlrn" --key "$work/release.key" -o "$work/update.signed.mlrn"
echo; echo "== what the device is told before downloading the body"
"$m" info "$work/update.signed.mlrn" | head -12
echo; echo "== the device verifies, then applies"
"$m" verify "$old" "$work/update.signed.mlrn" --pubkey "$work/release.pub"
"$m" patch "$old" "$work/update.signed.mlrn" -o "$out" --pubkey "$work/release.pub" --min-version 1

want=$(sha256sum < "$new" | cut -d' ' -f1)
got=$(sha256sum < "$out" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "demo-cli.sh: FAILED: output sha256 $got != new model $want" >&2; exit 1; }
new_size=$(stat -c %s "$new")
patch_size=$(stat -c %s "$work/update.signed.mlrn")
zstd_size=$(zstd -q -19 --long=27 --patch-from="$old" -c "$new" 2>/dev/null | wc -c)
echo
echo "== result: output sha256 equals the new model's ($want)"
awk -v p="$patch_size" -v n="$new_size" -v z="$zstd_size" 'BEGIN {
  printf "   new model            %12d bytes\n", n
  printf "   signed mallorn patch %12d bytes  (%.2f%% of the new model)\n", p, 100 * p / n
  printf "   zstd -19 --patch-from%12d bytes  (%.2f%%), for comparison\n", z, 100 * z / n }'
