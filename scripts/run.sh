#!/usr/bin/env bash
# The main job on the embedded default: build Mallorn, make a sample model store from the real
# releases in ../shared/models (every pair as <model>/1.<ext> and 2.<ext>), start the patch server
# mallornd on it (SQLite index and patch cache under build/run/data, patches signed with a key made
# here), then play a device's update with curl: check-update, wait for the on-demand build,
# download with a resume, apply with the CLI, compare with the new release; then the same update
# end to end by the device agent (mallorn-agent). The server keeps running until Ctrl-C.
# usage: scripts/run.sh [--once]     (--once: stop the server after the curl session)
# env:   PORT (default 8080), MALLORN_MODELS (default ../shared/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
once=0
[ "${1:-}" = "--once" ] && once=1
port=${PORT:-8080}
models_src=${MALLORN_MODELS:-$root/../shared/models}

./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target mallornd mallorn mallorn-agent

run=$root/build/run
rm -rf "$run/models"
mkdir -p "$run/models" "$run/data"
for pair in "$models_src"/pairs/*/; do
  name=$(basename "$pair")
  old=$(ls "$pair"old.* 2>/dev/null | head -1) || true
  new=$(ls "$pair"new.* 2>/dev/null | head -1) || true
  [ -n "$old" ] && [ -n "$new" ] || continue
  mkdir -p "$run/models/$name"
  ln -s "$old" "$run/models/$name/1.${old##*.}"
  ln -s "$new" "$run/models/$name/2.${new##*.}"
done
[ -f "$run/release.key" ] || build/bin/mallorn keygen -o "$run/release" >/dev/null
[ -f "$run/admin-token" ] || (umask 077 && head -c 24 /dev/urandom | base64 > "$run/admin-token")

build/bin/mallornd --models "$run/models" --data "$run/data" --listen "127.0.0.1:$port" \
  --signing-key "$run/release.key" --admin-token-file "$run/admin-token" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "run.sh: mallornd did not start on port $port" >&2; exit 1; }

S=http://127.0.0.1:$port
model=coral-mnv2-quant_2020-to-2021a
old=$(ls "$run/models/$model"/1.* | head -1)
new=$(ls "$run/models/$model"/2.* | head -1)
work=$(mktemp -d)
show() { echo; echo "\$ $*"; "$@"; echo; }

echo; echo "== a device runs $model version 1; it asks the server for an update"
sha=$(sha256sum < "$old" | cut -d' ' -f1)
show curl -s -X POST "$S/check-update" -H 'Content-Type: application/json' \
  -d "{\"sha256\":\"$sha\",\"model\":\"$model\",\"device_id\":\"demo-1\"}"
echo "== 202 means: the patch is being built, come back after Retry-After; polling..."
for _ in $(seq 600); do
  answer=$(curl -s -w '\n%{http_code}' -X POST "$S/check-update" -d "{\"sha256\":\"$sha\",\"model\":\"$model\"}")
  [ "$(tail -1 <<<"$answer")" = 200 ] && break
  sleep 0.2
done
answer=$(head -n -1 <<<"$answer")
echo "$answer"
patch_url=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["patch_url"])' <<<"$answer")

echo; echo "== download, cut after 4 KB as if the network dropped, then resume with curl -C -"
curl -s "$S$patch_url" | head -c 4096 > "$work/update.mlrn" || true
ls -l "$work/update.mlrn" | awk '{print "   partial file: " $5 " bytes"}'
show curl -s -C - -o "$work/update.mlrn" -w '   resumed: HTTP %{http_code}, %{size_download} more bytes\n' "$S$patch_url"
show curl -s -o /dev/null -r 0-99 -w '   range 0-99: HTTP %{http_code}, %{size_download} bytes\n' "$S$patch_url"

echo "== the device verifies the signature and hashes, and applies the patch"
curl -s "$S/fingerprint/$model/2" >/dev/null
show build/bin/mallorn patch "$old" "$work/update.mlrn" -o "$work/model.${new##*.}" --pubkey "$run/release.pub"
cmp "$work/model.${new##*.}" "$new" && echo "   identical to release 2: $(sha256sum < "$new" | cut -d' ' -f1)"
show curl -s -X POST "$S/report" -d "{\"device_id\":\"demo-1\",\"model\":\"$model\",\"from_version\":\"1\",\"to_version\":\"2\",\"state\":\"committed\"}"
patch_size=$(stat -c %s "$work/update.mlrn")
new_size=$(stat -L -c %s "$new")
awk -v p="$patch_size" -v n="$new_size" 'BEGIN { printf "== %d-byte signed patch for a %d-byte model (%.2f%%)\n", p, n, 100 * p / n }'
echo "== metrics (excerpt)"
curl -s "$S/metrics" | grep -E '^mallornd_(builds_total|bytes_served_total|patches_cached)' || true
rm -rf "$work"

echo; echo "== the same update, end to end, by the device agent (A/B slots, journal, health check)"
device=$run/device-demo-2
rm -rf "$device"
mkdir -p "$device"
cat > "$device/agent.json" <<JSON
{"server": "$S", "device_id": "demo-2", "public_key": "$run/release.pub", "poll_interval": 60,
 "models": [{"name": "$model", "dir": "$device/$model", "file": "model.tflite",
             "health_check": ["sh", "-c", "test -s \"\$MALLORN_MODEL\""], "health_timeout": 30}]}
JSON
agent="build/bin/mallorn-agent --config $device/agent.json"
show $agent install "$model" "$old"
show $agent check-once --json
show $agent status
echo "   $device/$model/current -> $(readlink "$device/$model/current")"
cmp "$device/$model/current/model.tflite" "$new" && echo "   the active slot is release 2, byte for byte"
show curl -s -H "Authorization: Bearer $(cat "$run/admin-token")" "$S/admin/devices/demo-2"

echo; echo "== the fleet dashboard: open $S/ui/ in a browser and sign in with the admin token"
echo "   token: $(cat "$run/admin-token")"
if [ "$once" = 1 ]; then exit 0; fi
echo
echo "mallornd is serving $(ls "$run/models" | wc -l) models at $S (admin token in $run/admin-token); Ctrl-C stops it."
echo "Try: curl -s $S/manifest | python3 -m json.tool | head -40"
wait $server
