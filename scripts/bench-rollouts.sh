#!/usr/bin/env bash
# Rollout benchmark (issue 12): POST /check-update against a mallornd with 10 active rollouts of
# the benchmarked model and 100,000 known devices in its index (device_state rows, and 100,000
# per-device rollout rows the engine loads into memory), vs the same server with the same devices
# and no rollouts. Target: >= 0.8x the requests/s. Both servers run at once on copies of the same
# data dir (patch already built); wrk runs alternate between them, best of BENCH_REPEAT kept.
#
# Each request is a different device (wrk picks one of the 100,000 at random) with tags; the
# rollouts are built so that a decision walks all ten: nine stage-1% rollouts on groups by `site`
# (newest first) and, oldest, a 100% rollout with an always-open maintenance window in
# Europe/Berlin that half of the devices also name in their `tz` tag (the zone lookup is measured).
#
# Writes its table into docs/benchmarks.md between <!-- rollout-bench:begin --> and
# <!-- rollout-bench:end --> (appended under its own heading when missing); scripts/bench-server.sh
# calls it at its end. Every number in that section is computed here.
#
# usage: scripts/bench-rollouts.sh
# environment: BENCH_DURATION (wrk seconds, default 10), BENCH_REPEAT (default 3),
#   ROLLOUT_BENCH_CONNECTIONS (default 100), ROLLOUT_BENCH_DEVICES (default 100000),
#   ROLLOUT_BENCH_PAIR (default tfm-hello-world-int8), PAIRS_DIR, BENCH_NO_DOCS=1 (print only).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
REPEAT=${BENCH_REPEAT:-3}
CONNS=${ROLLOUT_BENCH_CONNECTIONS:-100}
DEVICES=${ROLLOUT_BENCH_DEVICES:-100000}
PAIRS_DIR=${PAIRS_DIR:-$ROOT/../shared/models/pairs}
PAIR=${ROLLOUT_BENCH_PAIR:-tfm-hello-world-int8}
DOC=$ROOT/docs/benchmarks.md
MALLORND=${MALLORND:-$ROOT/build/bin/mallornd}

log() { printf '[bench-rollouts] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

for tool in wrk curl python3; do command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/bench-server.sh installs it)"; done
if [ ! -x "$MALLORND" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j2 --target mallornd >/dev/null
fi
[ -d "$PAIRS_DIR/$PAIR" ] || die "no pair $PAIR in $PAIRS_DIR"

TMP=$(mktemp -d /tmp/mallorn-bench-rollouts.XXXXXX)
mkdir -p "$TMP/bin" && cp "$MALLORND" "$TMP/bin/mlrn-bench-ro" && MALLORND=$TMP/bin/mlrn-bench-ro
declare -A PID PORT
stop_pid() {
  local pid=$1 _
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  for k in "${!PID[@]}"; do stop_pid "${PID[$k]}"; done
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- store: one pair as versions 1 -> 2
STORE=$TMP/models
mkdir -p "$STORE/$PAIR"
old=$(ls "$PAIRS_DIR/$PAIR"/old.* | head -n1); new=$(ls "$PAIRS_DIR/$PAIR"/new.* | head -n1)
ln -s "$(readlink -f "$old")" "$STORE/$PAIR/1.${old##*.}"
ln -s "$(readlink -f "$new")" "$STORE/$PAIR/2.${new##*.}"
OLD_SHA=$(sha256sum "$old" | cut -d' ' -f1)
printf 'rollout-bench-token-0123456789\n' >"$TMP/token"
AUTH=(-H "Authorization: Bearer rollout-bench-token-0123456789" -H "X-Mallorn-Actor: bench")

# start NAME DATA_DIR: a mallornd on its own port; records the seconds to its port file.
declare -A START_S
start() {
  local name=$1 data=$2 t0 _
  rm -f "$TMP/$name.port"
  t0=$(date +%s.%N)
  "$MALLORND" --models "$STORE" --data "$data" --listen 127.0.0.1:0 --port-file "$TMP/$name.port" --rate-limit 0 \
    --max-connections-per-address 4096 --admin-token-file "$TMP/token" >>"$TMP/$name.log" 2>&1 </dev/null &
  PID[$name]=$!
  for _ in $(seq 1200); do
    [ -s "$TMP/$name.port" ] && break
    kill -0 "${PID[$name]}" 2>/dev/null || { tail -n 20 "$TMP/$name.log" >&2; die "mallornd $name exited at start-up"; }
    sleep 0.05
  done
  [ -s "$TMP/$name.port" ] || die "mallornd $name did not start"
  START_S[$name]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  PORT[$name]=$(cat "$TMP/$name.port")
  log "mallornd $name: pid ${PID[$name]}, port ${PORT[$name]}, started in ${START_S[$name]} s"
}
url() { echo "http://127.0.0.1:${PORT[$1]}$2"; }
check() {  # check NAME DEVICE_INDEX -> the answer's JSON
  local i=$2
  curl -s -m 10 -X POST "$(url "$1" /check-update)" -d "{\"sha256\":\"$OLD_SHA\",\"model\":\"$PAIR\",\"device_id\":\"dev-$i\",\"tags\":{\"site\":\"site-$((i % 10))\",\"hw\":\"rpi4\",\"tz\":\"Europe/Berlin\"}}"
}
field() { python3 -c 'import json,sys; v=json.loads(sys.stdin.read() or "{}").get(sys.argv[1]); print("" if v is None else v)' "$1"; }

# ---- one data dir with the patch built, then a copy for each server
start base "$TMP/data"
for _ in $(seq 600); do
  [ "$(check base 0 | field status)" = ready ] && break
  sleep 0.2
done
[ "$(check base 0 | field status)" = ready ] || die "the patch for $PAIR was not built"
stop_pid "${PID[base]}"; unset 'PID[base]'
DB=$TMP/data/index.sqlite
[ -f "$DB" ] || die "no SQLite index at $DB"

# 100,000 known devices in the index (device_state, what the dashboard and /admin/devices read):
# one transaction of plain INSERTs, the fast way to a fleet of this size.
seed_t0=$(date +%s.%N)
python3 - "$DB" "$DEVICES" "$PAIR" <<'EOF'
import sqlite3, sys, time
db, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = sqlite3.connect(db)
now = int(time.time())
rows = ((f"dev-{i}", model, "1", "2", "committed", "", 0, "http",
         f'{{"hw":"rpi4","site":"site-{i % 10}","tz":"Europe/Berlin"}}', now) for i in range(n))
with con:
    con.executemany("INSERT OR REPLACE INTO device_state(device_id, model, from_version, to_version, state, error, "
                    "bytes_downloaded, client, tags_json, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
con.close()
EOF
SEED_S=$(awk -v a="$seed_t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
log "seeded $DEVICES devices in ${SEED_S} s"
cp -a "$TMP/data" "$TMP/data-none"
cp -a "$TMP/data" "$TMP/data-rollouts"

# ---- the rollouts server: 10 rollouts through the API, then 100,000 per-device rows, restart
start rollouts "$TMP/data-rollouts"
curl -fsS "${AUTH[@]}" -X POST "$(url rollouts /admin/rollouts)" -o /dev/null -d "{\"model\":\"$PAIR\",\"version\":\"2\",\"stages\":[100],
  \"min_reports\":1000000,\"window\":{\"start\":\"00:00\",\"end\":\"24:00\",\"tz\":\"Europe/Berlin\"}}" || die "creating rollout 1"
for k in $(seq 0 8); do
  curl -fsS "${AUTH[@]}" -X PUT "$(url rollouts "/admin/groups/site-$k")" -o /dev/null -d "{\"match\":{\"site\":\"site-$k\"}}"
  curl -fsS "${AUTH[@]}" -X POST "$(url rollouts /admin/rollouts)" -o /dev/null \
    -d "{\"model\":\"$PAIR\",\"version\":\"2\",\"group\":\"site-$k\",\"stages\":[1,10,50,100],\"min_reports\":1000000}"
done
ACTIVE=$(curl -fsS "${AUTH[@]}" "$(url rollouts /admin/rollouts)" | python3 -c 'import json,sys; print(sum(r["state"]=="running" for r in json.load(sys.stdin)["rollouts"]))')
[ "$ACTIVE" = 10 ] || die "expected 10 running rollouts, got $ACTIVE"
stop_pid "${PID[rollouts]}"
DB_R=${DB/$TMP\/data/$TMP/data-rollouts}
python3 - "$DB_R" "$DEVICES" <<'EOF'
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
now = int(time.time())
with con:  # every device offered by rollout 1; a tenth of them also reported a commit
    con.executemany("INSERT OR REPLACE INTO rollout_devices(rollout_id, device_id, state, bytes, updated_at) VALUES (1,?,?,?,?)",
                    ((f"dev-{i}", "committed" if i % 10 == 0 else "offered", 1000 if i % 10 == 0 else 0, now) for i in range(n)))
con.close()
EOF
start rollouts "$TMP/data-rollouts"
START_ROLLOUTS_S=${START_S[rollouts]}
start none "$TMP/data-none"

# Sanity: both answer 200 ready for sampled devices; with rollouts the answer names the rollout.
covered=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  a=$(check none "$i"); [ "$(echo "$a" | field status)" = ready ] || die "no-rollouts server: $a"
  b=$(check rollouts "$i"); [ "$(echo "$b" | field status)" = ready ] || die "rollouts server: $b"
  [ -n "$(echo "$b" | field rollout)" ] && covered=$((covered + 1))
done
[ "$covered" = 20 ] || die "only $covered of 20 sampled devices were covered by a rollout"
LOADED=$(curl -fsS "$(url rollouts /metrics)" | awk '/^mallornd_rollout_devices\{rollout="1"/{n+=$2} END{print n+0}')
log "rollout 1 holds $LOADED devices after the restart"

cat >"$TMP/devices.lua" <<EOF
local n, sha, model = $DEVICES, "$OLD_SHA", "$PAIR"
local headers = {["Content-Type"] = "application/json"}
math.randomseed(os.time())
request = function()
  local i = math.random(0, n - 1)
  local tz = (i % 2 == 0) and ',"tz":"Europe/Berlin"' or ''
  local body = string.format('{"sha256":"%s","model":"%s","device_id":"dev-%d","tags":{"site":"site-%d","hw":"rpi4"%s}}',
                             sha, model, i, i % 10, tz)
  return wrk.format("POST", "/check-update", headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("PCTL %d %d %d\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
EOF
declare -A RPS P50 P99 ERRS ALL
run() {  # run NAME: one wrk run, best requests/s kept
  local name=$1 out="$TMP/wrk-$1.txt" rps p50 p99 errs
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$TMP/devices.lua" "$(url "$name" /check-update)" >"$out" 2>&1 || true
  rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")
  p50=$(awk '$1=="PCTL"{printf "%.2f", $2/1000}' "$out")
  p99=$(awk '$1=="PCTL"{printf "%.2f", $4/1000}' "$out")
  errs=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
  log "$(printf '%-9s c=%s %8s req/s  p50/p99 %s/%s ms  errors %s' "$name" "$CONNS" "${rps:-0}" "${p50:-?}" "${p99:-?}" "$errs")"
  ERRS[$name]=$(( ${ERRS[$name]:-0} + errs ))
  ALL[$name]="${ALL[$name]:-} ${rps:-0}"
  if awk -v a="${rps:-0}" -v b="${RPS[$name]:--1}" 'BEGIN{exit !(a+0 > b+0)}'; then
    RPS[$name]=${rps:-0}; P50[$name]=${p50:-0}; P99[$name]=${p99:-0}
  fi
  sleep 1
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPEAT"); do
  if [ $((rep % 2)) = 1 ]; then run none; run rollouts; else run rollouts; run none; fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
for k in none rollouts; do kill -0 "${PID[$k]}" 2>/dev/null || die "mallornd $k died during the runs"; done
RSS_NONE=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/${PID[none]}/status")
RSS_ROLLOUTS=$(awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/${PID[rollouts]}/status")
OFFERED=$(curl -fsS "$(url rollouts /metrics)" | awk '/^mallornd_rollout_devices\{/ && /state="offered"/{n+=$2} END{print n+0}')
RATIO=$(awk -v a="${RPS[rollouts]}" -v b="${RPS[none]}" 'BEGIN{ if (b+0 > 0) printf "%.2f", a/b; else print "n/a" }')
MET=$(awk -v r="$RATIO" 'BEGIN{ print (r != "n/a" && r+0 >= 0.8) ? "met" : "not met" }')
# The best run is what the target is judged on (as in bench-server.sh); the medians show how much
# of the difference is the machine's background load.
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END{ if (NR % 2) print v[(NR+1)/2]; else printf "%.0f", (v[NR/2]+v[NR/2+1])/2 }'; }
MED_NONE=$(echo "${ALL[none]}" | median); MED_ROLLOUTS=$(echo "${ALL[rollouts]}" | median)
MED_RATIO=$(awk -v a="$MED_ROLLOUTS" -v b="$MED_NONE" 'BEGIN{ if (b+0 > 0) printf "%.2f", a/b; else print "n/a" }')
fmt_int() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

md=$TMP/report.md
{
  echo "Generated by \`scripts/bench-rollouts.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores, $("$MALLORND" --version 2>&1 | head -n1)."
  echo "Two mallornd processes on copies of one data dir (model \`$PAIR\` 1 -> 2, patch built), each with"
  echo "$(fmt_int "$DEVICES") known devices in its SQLite index (device_state rows, seeded in one transaction in ${SEED_S} s)."
  echo "The rollouts server also has 10 running rollouts of version 2: nine at their 1% stage on groups by"
  echo "\`site\` (newest first, so a decision walks all ten) and a 100% rollout with an always-open window in"
  echo "\`Europe/Berlin\`, holding $(fmt_int "$LOADED") per-device rows that the engine loads at start (start-up took"
  echo "${START_ROLLOUTS_S} s). wrk (2 threads, $CONNS connections, ${DURATION} s, best of $REPEAT runs taking turns) sends"
  echo "each request as one of the $(fmt_int "$DEVICES") devices at random, with \`site\`/\`hw\` tags and, for half of"
  echo "them, \`tz: Europe/Berlin\`. Load average before: $LOAD_BEFORE, after: $LOAD_AFTER."
  echo
  echo "| server | check-update req/s (best) | p50 / p99 ms (best run) | req/s of each run | median | errors | RSS after |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| no rollouts | $(fmt_int "${RPS[none]}") | ${P50[none]} / ${P99[none]} |${ALL[none]} | $(fmt_int "$MED_NONE") | ${ERRS[none]} | $RSS_NONE MiB |"
  echo "| 10 active rollouts | $(fmt_int "${RPS[rollouts]}") | ${P50[rollouts]} / ${P99[rollouts]} |${ALL[rollouts]} | $(fmt_int "$MED_ROLLOUTS") | ${ERRS[rollouts]} | $RSS_ROLLOUTS MiB |"
  echo
  echo "| target | result | met |"
  echo "|---|---|---|"
  echo "| check-update with 10 rollouts and $(fmt_int "$DEVICES") devices >= 0.8x the same server without rollouts | ${RATIO}x (best runs; medians ${MED_RATIO}x) | $MET |"
  echo
  echo "After the runs the rollouts server counted $(fmt_int "$OFFERED") devices as offered (rows recorded off the request path)."
} >"$md"
echo
cat "$md"

if [ "${BENCH_NO_DOCS:-0}" != 1 ]; then
  python3 - "$DOC" "$md" <<'EOF'
import sys
from pathlib import Path
doc, body = Path(sys.argv[1]), Path(sys.argv[2]).read_text().rstrip("\n")
begin, end = "<!-- rollout-bench:begin -->", "<!-- rollout-bench:end -->"
text = doc.read_text() if doc.exists() else "# Benchmarks\n"
lines = text.split("\n")
if begin in lines and end in lines and lines.index(begin) < lines.index(end):
    i, j = lines.index(begin), lines.index(end)
    lines[i + 1:j] = body.split("\n")
    text = "\n".join(lines)
else:
    text = (text.rstrip("\n") + "\n\n## Fleet rollouts: check-update with 10 active rollouts (`scripts/bench-rollouts.sh`)\n\n"
            + begin + "\n" + body + "\n" + end + "\n")
doc.write_text(text)
EOF
  log "wrote $DOC"
fi
