#!/usr/bin/env bash
# The main job on the embedded default: builds Mallorn, then makes, inspects, signs, verifies
# and applies a patch between two real releases of a model, and checks the result bit for bit.
# usage: scripts/run.sh [PAIR_DIR]   (default: ../shared/models/pairs/coral-mnv2-quant_2020-to-2021a)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./scripts/build.sh
pair=${1:-$root/../shared/models/pairs/coral-mnv2-quant_2020-to-2021a}
old=$(ls "$pair"/old.*) new=$(ls "$pair"/new.*)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=build/bin/mallorn
ext=${new##*.}

echo "== fingerprint of the model on the device"
$m fingerprint "$old"
echo "== release key and a signed patch old -> new"
$m keygen -o "$work/release"
$m diff "$old" "$new" -o "$work/update.mlrn" --level 19 --neural --sign "$work/release.key" --target-version 2
$m info "$work/update.mlrn" | head -10
echo "== the device verifies and applies it"
$m verify "$old" "$work/update.mlrn" --pubkey "$work/release.pub"
$m patch "$old" "$work/update.mlrn" -o "$work/model.$ext" --pubkey "$work/release.pub" --min-version 1
[ "$(sha256sum < "$work/model.$ext")" = "$(sha256sum < "$new")" ] || { echo "output differs from the new model" >&2; exit 1; }
echo "== result: bit-identical; patch $(stat -c %s "$work/update.mlrn") bytes vs new model $(stat -c %s "$new") bytes" \
     "vs zstd -19 --patch-from $(zstd -q -19 --long=27 --patch-from="$old" -c "$new" 2>/dev/null | wc -c) bytes"
