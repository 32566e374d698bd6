#!/usr/bin/env bash
# Scale-out benchmark (docs/scaling.md), run by scripts/bench-server.sh or alone:
#   - one replica, its index on PostgreSQL vs on SQLite: POST /check-update (patch ready) and
#     POST /report (a new device each time: a database write) req/s, p99, and mallornd's and
#     PostgreSQL's CPU time per request (from /proc, so the wrk client's own CPU is not counted);
#   - two replicas on one PostgreSQL and one patch directory behind nginx with the shipped
#     deploy/nginx/mallorn.conf: GET /patch/<id> through nginx's cache vs straight from a replica;
#   - PostgreSQL bytes per device (device_state and report history rows);
#   - a capacity model for DEVICES devices polling every POLL_S seconds, UPDATE_PCT % updating a day,
#     computed from those measured costs.
# Writes docs/benchmarks.md between <!-- scaleout-bench:begin --> and <!-- scaleout-bench:end -->,
# and the model into docs/scaling.md between <!-- capacity:begin --> and <!-- capacity:end -->.
#
# usage: scripts/bench-scaleout.sh
# environment: BENCH_DURATION (wrk seconds per run, default 10), BENCH_CONNECTIONS (100),
#   BENCH_REPEAT (check-update runs per back-end, best kept, default 3),
#   BENCH_PAIR (model pair whose patch is downloaded, default coral-mnv1-025-quant_2020-to-2021a),
#   PAIRS_DIR (../shared/models/pairs), BENCH_NO_DOCS=1 (print only), DEVICES (1000000),
#   POLL_S (900), UPDATE_PCT (1), PEAK_FACTOR (3: busiest hour vs average), REPLICA_CORES (2),
#   CORE_UTIL (0.5: CPU share a replica is planned to use), REPORTS_PER_UPDATE (4).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-100}
REPEAT=${BENCH_REPEAT:-3}
PAIR=${BENCH_PAIR:-coral-mnv1-025-quant_2020-to-2021a}
PAIRS_DIR=${PAIRS_DIR:-$ROOT/../shared/models/pairs}
DEVICES=${DEVICES:-1000000}; POLL_S=${POLL_S:-900}; UPDATE_PCT=${UPDATE_PCT:-1}; PEAK_FACTOR=${PEAK_FACTOR:-3}
REPLICA_CORES=${REPLICA_CORES:-2}; CORE_UTIL=${CORE_UTIL:-0.5}; REPORTS_PER_UPDATE=${REPORTS_PER_UPDATE:-4}
MALLORND=$ROOT/build/bin/mallornd

log() { printf '[bench-scaleout] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

./scripts/deps.sh
for tool in wrk curl python3; do command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/bench-server.sh installs wrk)"; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is missing"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PGBIN/initdb" ] || die "no PostgreSQL server binaries (scripts/deps.sh installs postgresql)"
if [ ! -x "$MALLORND" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j2 --target mallornd >/dev/null
fi
[ -d "$PAIRS_DIR/$PAIR" ] || die "no pair $PAIR in $PAIRS_DIR"

TMP=$(mktemp -d /tmp/mallorn-bench-scaleout.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/bin" && cp "$MALLORND" "$TMP/bin/mlrn-bench-sco" && MALLORND=$TMP/bin/mlrn-bench-sco
PIDS=()
AS=()
[ "$(id -u)" -eq 0 ] && AS=(runuser -u nobody --)
PGDATA=$TMP/pg/data
cleanup() {
  local rc=$? pid
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  [ -f "$PGDATA/postmaster.pid" ] && "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- store and PostgreSQL
STORE=$TMP/models
mkdir -p "$STORE/$PAIR"
old=$(ls "$PAIRS_DIR/$PAIR"/old.* | head -n1); new=$(ls "$PAIRS_DIR/$PAIR"/new.* | head -n1)
ln -s "$(readlink -f "$old")" "$STORE/$PAIR/1.${old##*.}"
ln -s "$(readlink -f "$new")" "$STORE/$PAIR/2.${new##*.}"
OLD_SHA=$(sha256sum "$old" | cut -d' ' -f1)

mkdir -p "$TMP/pg"
[ "$(id -u)" -eq 0 ] && chown nobody "$TMP/pg"
"${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U mallorn -A trust -E UTF8 --locale=C >"$TMP/pg/initdb.log" 2>&1 ||
  { cat "$TMP/pg/initdb.log" >&2; die "initdb failed"; }
# Defaults (fsync on, synchronous_commit on): what a real index would run with; unix socket only.
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/pg/server.log" -w -t 60 \
  -o "-k $TMP/pg -p 5432 -c listen_addresses='' -c max_connections=200" start >/dev/null || die "pg_ctl start failed"
PG_PID=$(head -n1 "$PGDATA/postmaster.pid")
psql_do() { psql -X -q -A -t -h "$TMP/pg" -p 5432 -U mallorn -d "$1" -c "$2"; }
psql_do postgres "CREATE DATABASE bench_pg" >/dev/null
psql_do postgres "CREATE DATABASE bench_nginx" >/dev/null
pg_url() { echo "postgresql://mallorn@/$1?host=$TMP/pg&port=5432"; }
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on $TMP/pg (pid $PG_PID)"

# ---------------------------------------------------------------- helpers
# cpu_ticks PID...: user+system clock ticks of the processes (and of their reaped children).
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
  done
  echo "$t"
}
pg_pids() { echo "$PG_PID" $(pgrep -P "$PG_PID" || true); }
HZ=$(getconf CLK_TCK)

# start_replica NAME DATABASE [ARGS...] -> sets PORT_<NAME> and PID_<NAME>
start_replica() {
  local name=$1 db=$2; shift 2
  mkdir -p "$TMP/$name"
  "$MALLORND" --models "$STORE" --data "$TMP/$name/data" --listen 127.0.0.1:0 --port-file "$TMP/$name/port" \
    --rate-limit 0 --max-connections-per-address 4096 --replica-name "$name" ${db:+--database "$db"} "$@" \
    >>"$TMP/$name/log" 2>&1 </dev/null &
  local pid=$! _
  PIDS+=("$pid")
  for _ in $(seq 300); do [ -s "$TMP/$name/port" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ -s "$TMP/$name/port" ] || { tail -n 20 "$TMP/$name/log" >&2; die "replica $name did not start"; }
  printf -v "PORT_$name" '%s' "$(cat "$TMP/$name/port")"
  printf -v "PID_$name" '%s' "$pid"
}
stop_replica() {  # stop_replica PID
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# wait_ready PORT: polls check-update until the patch is ready; leaves the answer in $TMP/ready.json
wait_ready() {
  local port=$1 code _
  for _ in $(seq 1200); do
    code=$(curl -s -m 30 -o "$TMP/ready.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data "{\"sha256\":\"$OLD_SHA\"}" "http://127.0.0.1:$port/check-update" || true)
    [ "$code" = 200 ] && grep -q '"status":"ready"' "$TMP/ready.json" && return 0
    sleep 0.5
  done
  die "no patch ready on port $port: $(head -c 300 "$TMP/ready.json")"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

cat >"$TMP/pct.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("PCTL %d %d %d\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
  io.write(string.format("TOTAL %d\n", summary.requests))
end
EOF
{ cat "$TMP/pct.lua"; cat <<EOF
wrk.method = "POST"
wrk.body = '{"sha256":"$OLD_SHA"}'
wrk.headers["Content-Type"] = "application/json"
EOF
} >"$TMP/check.lua"
{ cat "$TMP/pct.lua"; cat <<'EOF'
-- A new device each request: every report inserts a device_state row and a history row.
local n = 0
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  n = n + 1
  local body = string.format('{"device_id":"bench-%d-%d","state":"downloading","model":"m","from_version":"1","to_version":"2"}', tid or 0, n)
  return wrk.format("POST", "/report", {["Content-Type"] = "application/json"}, body)
end
EOF
} >"$TMP/report.lua"

declare -A RPS P99 XFER REQS MD_US PG_US ERRS
# measure KEY URL LUA REPLICA_PID: one wrk run, with mallornd's and PostgreSQL's CPU time around it
measure() {
  local key=$1 url=$2 lua=$3 pid=$4 out="$TMP/wrk-$1.txt" md0 md1 pg0 pg1 rps reqs errs
  md0=$(cpu_ticks "$pid"); pg0=$(cpu_ticks $(pg_pids))
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$lua" "$url" >"$out" 2>&1 || true
  md1=$(cpu_ticks "$pid"); pg1=$(cpu_ticks $(pg_pids))
  rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")
  reqs=$(awk '$1=="TOTAL"{print $2}' "$out")
  errs=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
  ERRS[$key]=$(( ${ERRS[$key]:-0} + errs ))
  [ -n "$rps" ] || { log "wrk $key produced no result: $(tail -n 3 "$out" | tr '\n' ' ')"; rps=0; }
  # Several runs of one key (BENCH_REPEAT): the best one's figures are kept.
  if [ -z "${RPS[$key]:-}" ] || [ "$rps" -gt "${RPS[$key]}" ]; then
    RPS[$key]=$rps
    REQS[$key]=$reqs
    P99[$key]=$(awk '$1=="PCTL"{printf "%.2f", $4/1000}' "$out")
    XFER[$key]=$(awk '/^Transfer\/sec:/{v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[A-Za-z]+$/,"",v);
        f=(u=="B")?1/1048576:(u=="KB")?1/1024:(u=="MB")?1:(u=="GB")?1024:1; printf "%.1f", v*f}' "$out")
    # microseconds of CPU per request
    MD_US[$key]=$(awk -v a="$md0" -v b="$md1" -v n="${reqs:-0}" -v hz="$HZ" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "n/a" }')
    PG_US[$key]=$(awk -v a="$pg0" -v b="$pg1" -v n="${reqs:-0}" -v hz="$HZ" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "n/a" }')
  fi
  log "$(printf '%-16s %8s req/s  CPU/request: mallornd %s us, PostgreSQL %s us  errors %s (best so far %s req/s)' \
    "$key" "$rps" "${MD_US[$key]}" "${PG_US[$key]}" "$errs" "${RPS[$key]}")"
  sleep 1
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# ---------------------------------------------------------------- one replica: SQLite vs PostgreSQL index
# Both replicas run throughout; the check-update runs alternate which goes first (drifting
# background load evens out) and keep each one's best of BENCH_REPEAT runs.
start_replica one_sqlite ""
start_replica one_pg "$(pg_url bench_pg)"
wait_ready "$PORT_one_sqlite"
wait_ready "$PORT_one_pg"
for rep in $(seq "$REPEAT"); do
  order="sqlite pg"; [ $((rep % 2)) = 0 ] && order="pg sqlite"
  for backend in $order; do
    port_var=PORT_one_$backend; pid_var=PID_one_$backend
    measure "check-$backend" "http://127.0.0.1:${!port_var}/check-update" "$TMP/check.lua" "${!pid_var}"
  done
done
for backend in sqlite pg; do
  port_var=PORT_one_$backend; pid_var=PID_one_$backend
  measure "report-$backend" "http://127.0.0.1:${!port_var}/report" "$TMP/report.lua" "${!pid_var}"
done
stop_replica "$PID_one_sqlite"; stop_replica "$PID_one_pg"
PATCH_SIZE=$(field "$TMP/ready.json" patch_size)
# PostgreSQL bytes per device: the device_state table (one row per device and model, indexes
# included) and the report history (capped by --report-history and --report-cap).
STATE_ROWS=$(psql_do bench_pg "SELECT COUNT(*) FROM device_state")
STATE_BYTES=$(psql_do bench_pg "SELECT pg_total_relation_size('device_state')")
HIST_ROWS=$(psql_do bench_pg "SELECT COUNT(*) FROM reports")
HIST_BYTES=$(psql_do bench_pg "SELECT pg_total_relation_size('reports')")
BYTES_PER_STATE=$(awk -v b="$STATE_BYTES" -v n="$STATE_ROWS" 'BEGIN{ printf "%.0f", (n>0) ? b/n : 0 }')
BYTES_PER_HIST=$(awk -v b="$HIST_BYTES" -v n="$HIST_ROWS" 'BEGIN{ printf "%.0f", (n>0) ? b/n : 0 }')
log "PostgreSQL: $STATE_ROWS device_state rows in $STATE_BYTES bytes ($BYTES_PER_STATE B/row), $HIST_ROWS history rows ($BYTES_PER_HIST B/row)"

# ---------------------------------------------------------------- two replicas behind nginx
mkdir -p "$TMP/patches" "$TMP/nginx"
start_replica r0 "$(pg_url bench_nginx)" --patches "$TMP/patches"
start_replica r1 "$(pg_url bench_nginx)" --patches "$TMP/patches"
wait_ready "$PORT_r0"
PATCH_URL=$(field "$TMP/ready.json" patch_url)
NGX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The shipped configuration, pointed at these replicas; limit_req off (wrk is one address).
awk -v r0="$PORT_r0" -v r1="$PORT_r1" -v port="$NGX_PORT" -v cache="$TMP/nginx/cache" '
  /^[ \t]*server[ \t]+10\.0\.0\.[0-9]+:8080/ { next }
  /^[ \t]*listen[ \t]+\[::\]/ { next }
  /limit_req/ { next }
  { gsub("/var/cache/nginx/mallorn", cache); sub(/listen 80;/, "listen 127.0.0.1:" port " backlog=4096;") }
  { print }
  /^[ \t]*upstream[ \t]+mallornd[ \t]*\{/ { print "    server 127.0.0.1:" r0 " max_fails=3 fail_timeout=10s;"; print "    server 127.0.0.1:" r1 " max_fails=3 fail_timeout=10s;" }
' deploy/nginx/mallorn.conf >"$TMP/nginx/mallorn.conf"
{
  [ "$(id -u)" -eq 0 ] && echo "user root;"
  cat <<EOF
worker_processes 2;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  include $TMP/nginx/mallorn.conf;
}
EOF
} >"$TMP/nginx/nginx.conf"
"$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" || die "bad nginx config"
"$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" >>"$TMP/nginx/error.log" 2>&1 </dev/null &
NGX_PID=$!
PIDS+=("$NGX_PID")
for _ in $(seq 100); do curl -fs -m 2 -o /dev/null "http://127.0.0.1:$NGX_PORT/healthz" && break; sleep 0.1; done
FIRST=$(curl -s -m 30 -o "$TMP/first.patch" -D - "http://127.0.0.1:$NGX_PORT$PATCH_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')
SECOND=$(curl -s -m 30 -o "$TMP/second.patch" -D - "http://127.0.0.1:$NGX_PORT$PATCH_URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')
cmp -s "$TMP/first.patch" "$TMP/second.patch" || die "nginx served two different patch bodies"
log "nginx on 127.0.0.1:$NGX_PORT: first fetch $FIRST, second $SECOND"
measure "patch-direct" "http://127.0.0.1:$PORT_r0$PATCH_URL" "$TMP/pct.lua" "$PID_r0"
served0=$(curl -s "http://127.0.0.1:$PORT_r0/metrics" "http://127.0.0.1:$PORT_r1/metrics" | awk '/^mallornd_bytes_served_total\{.*kind="patch"/{n+=$NF} END{print n+0}')
measure "patch-nginx" "http://127.0.0.1:$NGX_PORT$PATCH_URL" "$TMP/pct.lua" "$NGX_PID"
served1=$(curl -s "http://127.0.0.1:$PORT_r0/metrics" "http://127.0.0.1:$PORT_r1/metrics" | awk '/^mallornd_bytes_served_total\{.*kind="patch"/{n+=$NF} END{print n+0}')
ORIGIN_BYTES=$((served1 - served0))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report and capacity model
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 > 0) printf "%.2f", a/b; else print "n/a" }'; }
RATIO_CHECK=$(ratio "${RPS[check-pg]}" "${RPS[check-sqlite]}")
RATIO_REPORT=$(ratio "${RPS[report-pg]}" "${RPS[report-sqlite]}")
RATIO_PATCH=$(ratio "${XFER[patch-nginx]}" "${XFER[patch-direct]}")
MET=$(awk -v r="$RATIO_CHECK" 'BEGIN{ print (r != "n/a" && r+0 >= 0.7) ? "met" : "not met" }')
log "check-update PostgreSQL / SQLite: ${RATIO_CHECK}x (target >= 0.7x: $MET); report: ${RATIO_REPORT}x; patch via nginx cache / direct: ${RATIO_PATCH}x"

MACHINE="$(nproc) cores ($(uname -m)), $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo '?'), Linux $(uname -r)"
bench=$TMP/bench.md
{
  echo "Generated by \`scripts/bench-scaleout.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $MACHINE;"
  echo "$("$MALLORND" --version | head -n1), PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (default durability settings, unix socket),"
  echo "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'). wrk: 2 threads, $CONNS connections, ${DURATION} s per run;"
  echo "check-update: best of $REPEAT runs per back-end, both replicas up, taking turns to go first; the others one run;"
  echo "everything on this machine (load average before: $LOAD_BEFORE, after: $LOAD_AFTER). CPU per request is"
  echo "the server's own user+system time over the run divided by the requests answered (/proc), so the"
  echo "client's CPU is not counted. Store: \`$PAIR\` (patch $PATCH_SIZE bytes)."
  echo
  echo "| test | req/s | p99 ms | MiB/s | CPU per request | errors |"
  echo "|---|---:|---:|---:|---|---:|"
  for k in check-sqlite check-pg report-sqlite report-pg patch-direct patch-nginx; do
    case $k in
      check-*) what="check-update (patch ready), index on ${k#check-}" ;;
      report-*) what="report (a new device each), index on ${k#report-}" ;;
      patch-direct) what="GET /patch/<id> straight from a replica" ;;
      patch-nginx) what="GET /patch/<id> through nginx's cache (deploy/nginx/mallorn.conf)" ;;
    esac
    what=${what/on pg/on PostgreSQL}; what=${what/on sqlite/on SQLite}
    cpu="mallornd ${MD_US[$k]} us, PostgreSQL ${PG_US[$k]} us"
    [ "$k" = patch-nginx ] && cpu="${MD_US[$k]} us (nginx), replicas sent $ORIGIN_BYTES bytes during the run"
    echo "| $what | ${RPS[$k]} | ${P99[$k]} | ${XFER[$k]} | $cpu | ${ERRS[$k]} |"
  done
  echo
  echo "| target | result | met |"
  echo "|---|---|---|"
  echo "| check-update with the PostgreSQL index >= 0.7x the SQLite index | ${RATIO_CHECK}x | $MET |"
  echo "| (no target) report with the PostgreSQL index vs SQLite | ${RATIO_REPORT}x | |"
  echo "| (no target) patch download through nginx's cache vs from mallornd | ${RATIO_PATCH}x; first fetch \`$FIRST\`, second \`$SECOND\` | |"
  echo
  echo "PostgreSQL storage measured after the report runs: $STATE_ROWS \`device_state\` rows in $STATE_BYTES bytes"
  echo "(**$BYTES_PER_STATE B per device**, indexes included), $HIST_ROWS history rows ($BYTES_PER_HIST B per row)."
} >"$bench"

# The capacity model: measured per-request costs in, replicas and database size out.
cap=$TMP/capacity.md
python3 - "$cap" <<EOF
import math, sys
devices, poll_s, update_pct, peak = $DEVICES, $POLL_S, $UPDATE_PCT, $PEAK_FACTOR
replica_cores, util, reports_per_update = $REPLICA_CORES, $CORE_UTIL, $REPORTS_PER_UPDATE
check_us, check_pg_us = float("${MD_US[check-pg]}"), float("${PG_US[check-pg]}")
report_us, report_pg_us = float("${MD_US[report-pg]}"), float("${PG_US[report-pg]}")
patch_size, state_b, hist_b = $PATCH_SIZE, $BYTES_PER_STATE, $BYTES_PER_HIST
check_rps_measured = float("${RPS[check-pg]}")
checks = devices / poll_s
updates_day = devices * update_pct / 100
reports = updates_day * reports_per_update / 86400
peak_checks, peak_reports = checks * peak, reports * peak * 24  # a rollout stage's reports come within ~1 h
cores = (peak_checks * check_us + peak_reports * report_us) / 1e6 / util
replicas = max(2, math.ceil(cores / replica_cores) + 1)  # N+1: one can fail or be upgraded
pg_cores = (peak_checks * check_pg_us + peak_reports * report_pg_us) / 1e6
# --report-cap bounds device_state and the history alike: raised to 2x the fleet here; the history
# holds what 30 days of retention keep.
history = min(2 * devices, updates_day * reports_per_update * 30)
db_bytes = devices * state_b + history * hist_b
dl_day = updates_day * patch_size
def n(x, d=0): return f"{x:,.{d}f}"
rows = [
  ("check-updates, average", f"{n(checks)} /s", "extrapolated: devices / poll interval"),
  (f"check-updates, busiest hour (x{peak})", f"{n(peak_checks)} /s", "extrapolated: assumed peak factor"),
  ("mallornd CPU per check-update (PostgreSQL index)", f"{check_us} us", "measured"),
  ("PostgreSQL CPU per check-update", f"{check_pg_us} us", "measured (answers come from memory)"),
  ("mallornd / PostgreSQL CPU per report", f"{report_us} / {report_pg_us} us", "measured"),
  ("updates a day / reports at the rollout peak", f"{n(updates_day)} / {n(peak_reports, 1)} /s",
   f"extrapolated: {update_pct} % a day, {reports_per_update} reports each, all of a day's reports within one hour"),
  (f"mallornd cores at {int(util*100)} % utilisation", n(cores, 2), "extrapolated from the measured costs"),
  (f"replicas of {replica_cores} cores (N+1, at least 2)", str(replicas), "extrapolated"),
  ("PostgreSQL cores", n(pg_cores, 2), "extrapolated from the measured costs"),
  ("one replica's check-update rate on this machine", f"{n(check_rps_measured)} /s", "measured (client on the same cores)"),
  ("PostgreSQL size: device_state + history", f"{n(db_bytes / 2**20)} MiB",
   f"extrapolated: {n(devices)} x {state_b} B measured per device + {n(history)} history rows (30 days) x {hist_b} B; needs --report-cap >= {n(2 * devices)}"),
  ("patch bytes a day (this pair's patch)", f"{n(dl_day / 2**30, 2)} GiB",
   "extrapolated; served by nginx's cache / a CDN: replicas send each patch once per cache"),
]
with open(sys.argv[1], "w") as f:
    f.write(f"Computed by \`scripts/bench-scaleout.sh\` from its measurements on this machine ({n(devices)} devices, poll every {poll_s} s,\n")
    f.write(f"{update_pct} % updating a day). Figures marked measured come from the benchmark above; the rest are arithmetic on them.\n\n")
    f.write("| quantity | value | source |\n|---|---:|---|\n")
    for q, v, s in rows: f.write(f"| {q} | {v} | {s} |\n")
EOF
echo; cat "$bench"; echo; cat "$cap"

if [ "${BENCH_NO_DOCS:-0}" != 1 ]; then
  # splice DOC BODY TAG TITLE: BODY replaces what is between <!-- TAG:begin --> and <!-- TAG:end -->
  # (appended under TITLE the first time); the rest of DOC is left alone.
  cat >"$TMP/splice.py" <<'EOF'
import sys
from pathlib import Path
doc, body, tag, title = Path(sys.argv[1]), Path(sys.argv[2]).read_text().rstrip("\n"), sys.argv[3], sys.argv[4]
begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
text = doc.read_text() if doc.exists() else "# Benchmarks\n"
lines = text.split("\n")
if begin in lines and end in lines and lines.index(begin) < lines.index(end):
    i, j = lines.index(begin), lines.index(end)
    lines[i + 1:j] = body.split("\n")
    text = "\n".join(lines)
else:
    text = text.rstrip("\n") + f"\n\n{title}\n\n" + begin + "\n" + body + "\n" + end + "\n"
doc.write_text(text)
EOF
  python3 "$TMP/splice.py" "$ROOT/docs/benchmarks.md" "$bench" scaleout-bench "## Scale-out (PostgreSQL index, nginx cache)"
  python3 "$TMP/splice.py" "$ROOT/docs/scaling.md" "$cap" capacity "## Capacity model"
  log "wrote docs/benchmarks.md and docs/scaling.md"
fi
