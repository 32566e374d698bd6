#!/usr/bin/env bash
# Load benchmark of the patch server mallornd against nginx serving the same bytes statically:
#   - POST /check-update (patch already built) vs nginx GET of a static JSON of the same answer:
#     requests/s and p50/p95/p99 latency at 100 and 1000 connections (wrk, 2 threads);
#   - GET /patch/<id> of the largest patch vs nginx serving the same file: wrk's Transfer/sec;
#   - the same two over TLS (mallornd's OpenSSL vs nginx's, the same self-signed certificate);
#   - 10,000 idle keep-alive connections held against a fresh mallornd: its RSS, and a fresh request;
#   - time from the first check-update to a ready patch for the largest model pair, fresh data dir;
#   - then scripts/bench-scaleout.sh: the PostgreSQL index vs SQLite, patches through nginx's cache.
# Prints a table and writes it into docs/benchmarks.md between
# <!-- server-bench:begin --> and <!-- server-bench:end --> (the rest of the file is left alone).
# Everything (wrk, nginx, mallornd) runs on this machine, so the client competes for the same cores.
#
# usage: scripts/bench-server.sh
# environment: BENCH_DURATION (wrk seconds per run, default 10), BENCH_CONNECTIONS ("100 1000"),
#   BENCH_REPEAT (runs per figure, best kept, default 3),
#   IDLE_CONNECTIONS (10000), PAIRS_DIR (../shared/models/pairs), BENCH_NO_DOCS=1 (print only),
#   BENCH_TLS=0 (skip the TLS rows).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
read -ra CONNS <<<"${BENCH_CONNECTIONS:-100 1000}"
IDLE_N=${IDLE_CONNECTIONS:-10000}
REPEAT=${BENCH_REPEAT:-3}
TLS_ROWS=${BENCH_TLS:-1}
PAIRS_DIR=${PAIRS_DIR:-$ROOT/../shared/models/pairs}
DOC=$ROOT/docs/benchmarks.md
MALLORND=$ROOT/build/bin/mallornd

log() { printf '[bench-server] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

# ---------------------------------------------------------------- packages and build
./scripts/deps.sh
# Beyond deps.sh: the load tools, and mallornd's own build dependencies (Boost.Beast, SQLite).
# Any nginx package will do (nginx, nginx-light, ...): nginx-light only when none is installed.
packages=(wrk curl libboost-dev libsqlite3-dev)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
      sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
for tool in wrk nginx curl python3 openssl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || die "$tool is missing"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
log "building mallornd and mallorn (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target mallornd mallorn >/dev/null
[ -x "$MALLORND" ] || die "$MALLORND was not built"

# Room for 10,000 sockets on each side (children inherit the limit).
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_N + 512)) ] ||
  log "warning: open-file limit $(ulimit -n) is below $((IDLE_N + 512)); the idle test may fail"

# ---------------------------------------------------------------- temp dir and cleanup
TMP=$(mktemp -d /tmp/mallorn-bench-server.XXXXXX)
chmod 755 "$TMP"  # nginx workers (user nobody when started as root) read the www dir
# Run a copy, so a rebuild of build/bin/mallornd during the run does not change what is measured; under
# another name, so a `pkill mallornd` elsewhere on a shared machine does not stop it mid-run.
mkdir -p "$TMP/bin" && cp "$MALLORND" "$TMP/bin/mlrn-bench-srv" && MALLORND=$TMP/bin/mlrn-bench-srv
FAIL_LOG=/tmp/mallorn-bench-server-mallornd.log  # kept after the run when mallornd died
MD_PID=""; NGX_PID=""; IDLE_PID=""
stop_pid() {  # stop_pid PID: SIGTERM, then SIGKILL after 10 s
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
  stop_pid "$IDLE_PID"; stop_pid "$NGX_PID"; stop_pid "$MD_PID"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- model store
STORE=$TMP/models
mkdir -p "$STORE"
[ -d "$PAIRS_DIR" ] || die "no pairs in $PAIRS_DIR"
declare -A OLD_SHA OLD_SIZE NEW_SIZE
PAIRS=()
for d in "$PAIRS_DIR"/*/; do
  name=$(basename "$d")
  old=$(ls "$d"old.* 2>/dev/null | head -n1 || true); new=$(ls "$d"new.* 2>/dev/null | head -n1 || true)
  [ -n "$old" ] && [ -n "$new" ] || { log "skipping $name (no old.*/new.*)"; continue; }
  mkdir -p "$STORE/$name"
  ln -s "$(readlink -f "$old")" "$STORE/$name/1.${old##*.}"
  ln -s "$(readlink -f "$new")" "$STORE/$name/2.${new##*.}"
  OLD_SHA[$name]=$(sha256sum "$old" | cut -d' ' -f1)
  OLD_SIZE[$name]=$(stat -Lc %s "$old"); NEW_SIZE[$name]=$(stat -Lc %s "$new")
  PAIRS+=("$name")
done
[ ${#PAIRS[@]} -gt 0 ] || die "no model pairs found in $PAIRS_DIR"
BIG_PAIR=""; big_bytes=0
for p in "${PAIRS[@]}"; do
  b=$((OLD_SIZE[$p] + NEW_SIZE[$p]))
  [ $b -gt $big_bytes ] && { big_bytes=$b; BIG_PAIR=$p; }
done
log "${#PAIRS[@]} pairs; largest: $BIG_PAIR (${OLD_SIZE[$BIG_PAIR]} -> ${NEW_SIZE[$BIG_PAIR]} bytes)"

# ---------------------------------------------------------------- mallornd
DATA=$TMP/data
MD_PORT=""; MD_STARTS=0; MD_LOG_LINE=0; CRASHES=()
# start_mallornd [EXTRA ARGS...]: the wrk runs pass --max-connections-per-address (wrk's 1000
# connections all come from 127.0.0.1, like clients behind one NAT); the idle test keeps every
# default limit and spreads its connections over 200 loopback addresses instead.
MD_EXTRA=()
MD_SCHEME=http
start_mallornd() {
  [ $# -gt 0 ] && MD_EXTRA=("$@")
  rm -f "$TMP/mallornd.port"
  MD_LOG_LINE=$( (cat "$TMP/mallornd.log" 2>/dev/null || true) | wc -l)
  MD_STARTS=$((MD_STARTS + 1))
  "$MALLORND" --models "$STORE" --data "$DATA" --listen 127.0.0.1:0 --port-file "$TMP/mallornd.port" \
    --rate-limit 0 ${MD_EXTRA[@]+"${MD_EXTRA[@]}"} >>"$TMP/mallornd.log" 2>&1 </dev/null &
  MD_PID=$!
  local _
  for _ in $(seq 300); do
    [ -s "$TMP/mallornd.port" ] && break
    kill -0 "$MD_PID" 2>/dev/null || { tail -n 20 "$TMP/mallornd.log" >&2; die "mallornd exited at start-up"; }
    sleep 0.1
  done
  [ -s "$TMP/mallornd.port" ] || die "mallornd did not write its port file"
  MD_PORT=$(cat "$TMP/mallornd.port")
  curl -kfsS -m 5 -o /dev/null "$MD_SCHEME://127.0.0.1:$MD_PORT/healthz" || die "mallornd does not answer /healthz"
  log "mallornd pid $MD_PID on 127.0.0.1:$MD_PORT"
}
# ensure_mallornd WHAT: after a step, restart mallornd (same data dir) if it died, and record it.
ensure_mallornd() {
  if kill -0 "$MD_PID" 2>/dev/null && curl -kfs -m 10 -o /dev/null "$MD_SCHEME://127.0.0.1:$MD_PORT/healthz"; then
    return 0
  fi
  local status=alive-but-unresponsive last
  if ! kill -0 "$MD_PID" 2>/dev/null; then
    wait "$MD_PID" 2>/dev/null && status="exited 0" || status="exited with status $?"
    tail -n +$((MD_LOG_LINE + 1)) "$TMP/mallornd.log" | grep -q "draining" &&
      status+=" after draining (a SIGTERM from outside this script?)"
  fi
  # what this instance wrote last that is not a regular log line (abort messages and the like)
  last=$(tail -n +$((MD_LOG_LINE + 1)) "$TMP/mallornd.log" | grep -v '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] ' | tail -n 3 | tr '\n' ' ' || true)
  CRASHES+=("during $1: mallornd $status; stderr: ${last:-(nothing)}")
  log "mallornd died or hung during $1 ($status): ${last:-}"
  cp "$TMP/mallornd.log" "$FAIL_LOG" 2>/dev/null || true
  kill -KILL "$MD_PID" 2>/dev/null || true
  wait "$MD_PID" 2>/dev/null || true
  start_mallornd
  return 1
}

json_field() {  # json_field FILE KEY -> value ('' if null/missing)
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null || true
}
# check_update SHA OUTFILE [MODEL] -> HTTP status on stdout ("000" when no answer). MODEL matters when
# the same file is a version of several models (e.g. the new file of one pair is the old of another).
check_update() {
  local body="{\"sha256\":\"$1\"${3:+,\"model\":\"$3\"}}"
  curl -s -m 30 -o "$2" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "$body" "http://127.0.0.1:$MD_PORT/check-update" || true
}
# wait_ready PAIR TIMEOUT_S: poll check-update every 50 ms until 200 + status ready; the answer is
# left in $TMP/ready-PAIR.json.
wait_ready() {
  local pair=$1 timeout=$2 out="$TMP/ready-$1.json" code status t_end
  t_end=$(( $(date +%s) + timeout ))
  while :; do
    code=$(check_update "${OLD_SHA[$pair]}" "$out" "$pair")
    if [ "$code" = 200 ]; then
      status=$(json_field "$out" status)
      [ "$status" = ready ] && return 0
      log "$pair: 200 with status '$status' ($(json_field "$out" reason))"
      return 1
    fi
    case $code in
      202|503) ;;
      000) kill -0 "$MD_PID" 2>/dev/null || { log "$pair: mallornd is gone"; return 1; } ;;
      *) log "$pair: check-update answered $code: $(head -c 300 "$out")"; return 1 ;;
    esac
    [ "$(date +%s)" -lt "$t_end" ] || { log "$pair: not ready after ${timeout}s"; return 1; }
    sleep 0.05
  done
}

start_mallornd --max-connections-per-address 4096
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- time to a ready patch, largest pair, fresh data dir (nothing else queued). Should mallornd
# die meanwhile, it is restarted on an emptied data dir and the measurement made again.
READY_S=""
for attempt in 1 2 3; do
  log "time to ready patch: $BIG_PAIR (attempt $attempt)"
  t0=$(date +%s.%N)
  first_code=$(check_update "${OLD_SHA[$BIG_PAIR]}" "$TMP/first.json")
  if wait_ready "$BIG_PAIR" 600; then
    t1=$(date +%s.%N)
    READY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    break
  fi
  ensure_mallornd "the first patch build" && die "no patch for $BIG_PAIR"
  stop_pid "$MD_PID"; rm -rf "$DATA"; start_mallornd
done
[ -n "$READY_S" ] || die "no patch for $BIG_PAIR in 3 attempts"
READY_BUILD_S=$(grep -o "build $BIG_PAIR: .* ready in [0-9.]* s" "$TMP/mallornd.log" | tail -n1 | sed 's/.*ready in \([0-9.]*\) s/\1/' || true)
READY_PATCH_SIZE=$(json_field "$TMP/ready-$BIG_PAIR.json" patch_size)
log "first answer $first_code; ready after ${READY_S}s (server build ${READY_BUILD_S:-?}s), patch $READY_PATCH_SIZE bytes"

# ---- build every other pair's patch (asking with the model name too: one pair's new file is
# another's old one), then pick the largest patch
log "building patches for all ${#PAIRS[@]} pairs"
for p in "${PAIRS[@]}"; do check_update "${OLD_SHA[$p]}" /dev/null "$p" >/dev/null; done
FAILED_PAIRS=()
for p in "${PAIRS[@]}"; do
  wait_ready "$p" 900 && continue
  ensure_mallornd "patch builds" && { FAILED_PAIRS+=("$p"); continue; }
  # mallornd died: builds queued in it are lost, ask again
  for q in "${PAIRS[@]}"; do check_update "${OLD_SHA[$q]}" /dev/null "$q" >/dev/null; done
  wait_ready "$p" 900 || FAILED_PAIRS+=("$p")
done
[ ${#FAILED_PAIRS[@]} -eq 0 ] || log "no patch for: ${FAILED_PAIRS[*]}"
PATCH_PAIR=""; PATCH_SIZE=0
for p in "${PAIRS[@]}"; do
  [ -f "$TMP/ready-$p.json" ] && [ "$(json_field "$TMP/ready-$p.json" status)" = ready ] || continue
  s=$(json_field "$TMP/ready-$p.json" patch_size)
  [ "$s" -gt "$PATCH_SIZE" ] && { PATCH_SIZE=$s; PATCH_PAIR=$p; }
done
[ -n "$PATCH_PAIR" ] || die "no patch was built"
PATCH_ID=$(json_field "$TMP/ready-$PATCH_PAIR.json" patch_id)
PATCH_URL=$(json_field "$TMP/ready-$PATCH_PAIR.json" patch_url)
[ -f "$DATA/patches/$PATCH_ID.mlrn" ] || die "patch file $DATA/patches/$PATCH_ID.mlrn missing"
log "largest patch: $PATCH_PAIR, $PATCH_SIZE bytes ($PATCH_URL)"

# ---------------------------------------------------------------- nginx
WWW=$TMP/www
mkdir -p "$WWW/patch" "$TMP/nginx"
cp "$DATA/patches/$PATCH_ID.mlrn" "$WWW/patch/$PATCH_ID"
cp "$TMP/ready-$BIG_PAIR.json" "$WWW/check-update.json"  # mallornd's own answer for the pair benchmarked
chmod -R a+rX "$WWW"
NGX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NGX_TLS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# One self-signed certificate for both servers (P-256: what a fleet server would use).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1 || die "openssl could not make a certificate"
chmod a+r "$TMP/tls.key" "$TMP/tls.crt"
cat >"$TMP/nginx/nginx.conf" <<EOF
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
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  types { application/json json; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$NGX_PORT backlog=4096;
    root $WWW;
  }
  server {
    listen 127.0.0.1:$NGX_TLS_PORT ssl backlog=4096;
    ssl_certificate $TMP/tls.crt;
    ssl_certificate_key $TMP/tls.key;
    # mallornd's TLS policy (server/src/http/tls_policy.cpp), so both encrypt with the same suite
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384;
    ssl_conf_command Options PrioritizeChaCha;
    root $WWW;
  }
}
EOF
"$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" || die "bad nginx config"
"$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" >>"$TMP/nginx/error.log" 2>&1 </dev/null &
NGX_PID=$!
for _ in $(seq 50); do curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$NGX_PORT/check-update.json" 2>/dev/null && break; sleep 0.1; done
curl -fsS -m 5 -o "$TMP/ngx.json" "http://127.0.0.1:$NGX_PORT/check-update.json" || { cat "$TMP/nginx/error.log" >&2; die "nginx does not answer"; }
curl -fsS -m 5 -o "$TMP/ngx.patch" "http://127.0.0.1:$NGX_PORT$PATCH_URL"
curl -fsS -m 5 -o "$TMP/md.patch" "http://127.0.0.1:$MD_PORT$PATCH_URL"
cmp -s "$TMP/ngx.patch" "$TMP/md.patch" || die "nginx and mallornd serve different patch bytes"
JSON_BYTES=$(stat -c %s "$WWW/check-update.json")
log "nginx pid $NGX_PID on 127.0.0.1:$NGX_PORT (same patch bytes, ${JSON_BYTES}-byte JSON)"

# ---------------------------------------------------------------- wrk runs
# wrk's --latency table has no p95: every run loads this done() hook, which prints p50/p95/p99.
cat >"$TMP/pct.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("PCTL %d %d %d\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
EOF
cat "$TMP/pct.lua" >"$TMP/check-update.lua"
cat >>"$TMP/check-update.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"sha256":"${OLD_SHA[$BIG_PAIR]}"}'
wrk.headers["Content-Type"] = "application/json"
EOF
declare -A RPS P50 P95 P99 XFER ERRS DIED RUNS
# run_wrk KEY CONNS URL [LUA]: one wrk run; keeps the best of the runs made for KEY (highest
# requests/s, or MiB/s for patch keys) in RPS / P99 (ms) / XFER (MiB/s) / ERRS (non-2xx + socket
# errors, summed over all runs), and every run's figure in RUNS (space-separated, in run order).
run_wrk() {
  local key=$1 c=$2 url=$3 lua=${4:-$TMP/pct.lua} out="$TMP/wrk-$1.txt" rps p50 p95 p99 xfer errs better
  local args=(-t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency -s "$lua")
  wrk "${args[@]}" "$url" >"$out" 2>&1 || true
  cat "$out" >>"$TMP/wrk-all.txt"
  rps=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out")
  p50=$(awk '$1=="PCTL"{printf "%.2f", $2/1000}' "$out")
  p95=$(awk '$1=="PCTL"{printf "%.2f", $3/1000}' "$out")
  p99=$(awk '$1=="PCTL"{printf "%.2f", $4/1000}' "$out")
  xfer=$(awk '/^Transfer\/sec:/{v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[A-Za-z]+$/,"",v);
      f=(u=="B")?1/1048576:(u=="KB")?1/1024:(u=="MB")?1:(u=="GB")?1024:1; printf "%.1f", v*f}' "$out")
  errs=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
  if [ -z "$rps" ]; then
    log "wrk $key produced no result: $(tail -n 3 "$out" | tr '\n' ' ')"
    rps=0; p99=0; xfer=0
  fi
  log "$(printf '%-18s c=%-5s %8s req/s  p50/p95/p99 %s/%s/%s ms  %8s MiB/s  errors %s' "$key" "$c" "$rps" "${p50:-?}" "${p95:-?}" "${p99:-?}" "$xfer" "$errs")"
  ERRS[$key]=$(( ${ERRS[$key]:-0} + errs ))
  case $key in *patch*) RUNS[$key]+="$xfer " ;; *) RUNS[$key]+="$rps " ;; esac
  case $key in *patch*) better=$(awk -v a="$xfer" -v b="${XFER[$key]:--1}" 'BEGIN{print (a+0 > b+0)}') ;;
                *) better=$(awk -v a="$rps" -v b="${RPS[$key]:--1}" 'BEGIN{print (a+0 > b+0)}') ;; esac
  if [ "$better" = 1 ]; then RPS[$key]=$rps; P50[$key]=${p50:-0}; P95[$key]=${p95:-0}; P99[$key]=${p99:-0}; XFER[$key]=$xfer; fi
}
md_run() {  # md_run KEY CONNS PATH [LUA]: run_wrk against mallornd (its port may change), then check it survived
  run_wrk "$1" "$2" "$MD_SCHEME://127.0.0.1:$MD_PORT$3" "${4:-}"
  ensure_mallornd "wrk ${1%-*} at $2 connections (run $rep)" || DIED[$1]=1
  sleep 1
}
ngx_run() { run_wrk "$1" "$2" "http://127.0.0.1:$NGX_PORT$3"; sleep 1; }
ngx_tls_run() { run_wrk "$1" "$2" "https://127.0.0.1:$NGX_TLS_PORT$3"; sleep 1; }
for rep in $(seq "$REPEAT"); do
  for c in "${CONNS[@]}"; do
    # The pair benchmarked must answer 200 ready (not 202) before the run.
    wait_ready "$BIG_PAIR" 120 || die "check-update for $BIG_PAIR is not ready"
    if [ $((rep % 2)) = 1 ]; then  # alternate who goes first, so drifting background load evens out
      md_run md-check-"$c" "$c" /check-update "$TMP/check-update.lua"; ngx_run ngx-json-"$c" "$c" /check-update.json
      md_run md-patch-"$c" "$c" "$PATCH_URL"; ngx_run ngx-patch-"$c" "$c" "$PATCH_URL"
    else
      ngx_run ngx-json-"$c" "$c" /check-update.json; md_run md-check-"$c" "$c" /check-update "$TMP/check-update.lua"
      ngx_run ngx-patch-"$c" "$c" "$PATCH_URL"; md_run md-patch-"$c" "$c" "$PATCH_URL"
    fi
  done
done
# ---- the same over TLS: mallornd restarted on the same data dir with the certificate nginx uses
if [ "$TLS_ROWS" = 1 ]; then
  stop_pid "$MD_PID"
  MD_SCHEME=https
  start_mallornd --max-connections-per-address 4096 --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key"
  # what a client offering OpenSSL's defaults (as wrk does) negotiates with each
  suite_of() { openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p' | head -n1; }
  MD_SUITE=$(suite_of "$MD_PORT"); NGX_SUITE=$(suite_of "$NGX_TLS_PORT")
  log "TLS: mallornd negotiates ${MD_SUITE:-?}, nginx ${NGX_SUITE:-?}"
  for rep in $(seq "$REPEAT"); do
    for c in "${CONNS[@]}"; do
      if [ $((rep % 2)) = 1 ]; then
        md_run md-tls-check-"$c" "$c" /check-update "$TMP/check-update.lua"; ngx_tls_run ngx-tls-json-"$c" "$c" /check-update.json
        md_run md-tls-patch-"$c" "$c" "$PATCH_URL"; ngx_tls_run ngx-tls-patch-"$c" "$c" "$PATCH_URL"
      else
        ngx_tls_run ngx-tls-json-"$c" "$c" /check-update.json; md_run md-tls-check-"$c" "$c" /check-update "$TMP/check-update.lua"
        ngx_tls_run ngx-tls-patch-"$c" "$c" "$PATCH_URL"; md_run md-tls-patch-"$c" "$c" "$PATCH_URL"
      fi
    done
  done
  MD_SCHEME=http
fi
star() { [ -n "${DIED[$1]:-}" ] && echo "$2*" || echo "$2"; }  # marks figures from runs mallornd did not survive

# ---------------------------------------------------------------- idle connections
# What the process that served the wrk runs kept, then a fresh mallornd for the idle test, so that
# its RSS shows what idle connections cost rather than what the 1000-connection downloads left.
RSS_LOAD_KB=$(awk '/^VmRSS:/{print $2}' "/proc/$MD_PID/status")
HWM_LOAD_KB=$(awk '/^VmHWM:/{print $2}' "/proc/$MD_PID/status")
stop_pid "$MD_PID"
MD_EXTRA=()
start_mallornd --rate-limit 0  # every connection limit at its default
wait_ready "$BIG_PAIR" 60 || die "check-update for $BIG_PAIR is not ready after the restart"
log "holding $IDLE_N idle keep-alive connections against a fresh mallornd"
RSS_BEFORE_KB=$(awk '/^VmRSS:/{print $2}' "/proc/$MD_PID/status")
python3 "$ROOT/tests/bench/idle_connections.py" --port "$MD_PORT" -n "$IDLE_N" \
  --ready-file "$TMP/idle.ready" --release-file "$TMP/idle.release" --hold 300 --sources 200 \
  >"$TMP/idle.out" 2>"$TMP/idle.err" &
IDLE_PID=$!
for _ in $(seq 1200); do [ -f "$TMP/idle.ready" ] && break; kill -0 "$IDLE_PID" 2>/dev/null || break; sleep 0.1; done
[ -f "$TMP/idle.ready" ] || { cat "$TMP/idle.err" >&2; die "idle_connections.py did not get its connections open"; }
sleep 2  # let the server settle
IDLE_OPEN=$(json_field "$TMP/idle.ready" open)
IDLE_OPEN_S=$(json_field "$TMP/idle.ready" open_seconds)
if kill -0 "$MD_PID" 2>/dev/null; then
  RSS_HELD_KB=$(awk '/^VmRSS:/{print $2}' "/proc/$MD_PID/status")
  THREADS_HELD=$(awk '/^Threads:/{print $2}' "/proc/$MD_PID/status")
  FDS_HELD=$(ls "/proc/$MD_PID/fd" | wc -l)
else
  RSS_HELD_KB=0; THREADS_HELD=0; FDS_HELD=0
fi
FRESH_HEALTH=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MD_PORT/healthz" || true)
FRESH_CHECK=$(check_update "${OLD_SHA[$BIG_PAIR]}" "$TMP/fresh.json")
FRESH_STATUS=$(json_field "$TMP/fresh.json" status)
touch "$TMP/idle.release"
wait "$IDLE_PID" || true
IDLE_PID=""
IDLE_USABLE=$(json_field "$TMP/idle.out" still_usable)
ensure_mallornd "the idle-connection test" || true
RSS_HELD_MIB=$(awk -v k="$RSS_HELD_KB" 'BEGIN{printf "%.1f", k/1024}')
RSS_BEFORE_MIB=$(awk -v k="$RSS_BEFORE_KB" 'BEGIN{printf "%.1f", k/1024}')
RSS_LOAD_MIB=$(awk -v k="$RSS_LOAD_KB" 'BEGIN{printf "%.1f", k/1024}')
HWM_LOAD_MIB=$(awk -v k="$HWM_LOAD_KB" 'BEGIN{printf "%.1f", k/1024}')
log "idle: open $IDLE_OPEN in ${IDLE_OPEN_S}s, RSS $RSS_BEFORE_MIB -> $RSS_HELD_MIB MiB, fresh /healthz $FRESH_HEALTH," \
    "check-update $FRESH_CHECK ($FRESH_STATUS), still usable after hold: ${IDLE_USABLE:-?}"

# ---------------------------------------------------------------- report
ratio() { awk -v a="${1%\*}" -v b="${2%\*}" 'BEGIN{ if (b+0 > 0) printf "%.2f", a/b; else print "n/a" }'; }
# run_ratios MD_KEY NGX_KEY: run i of mallornd against run i of nginx (they ran in turn), for every i.
run_ratios() {
  awk -v a="${RUNS[$1]:-}" -v b="${RUNS[$2]:-}" 'BEGIN{ n = split(a, x, " "); m = split(b, y, " "); s = "";
    for (i = 1; i <= n && i <= m; i++) s = s (i > 1 ? " / " : "") (y[i] > 0 ? sprintf("%.2f", x[i] / y[i]) : "n/a");
    print (s == "" ? "n/a" : s) }'
}
meets() { awk -v r="$1" -v t="$2" 'BEGIN{ print (r != "n/a" && r+0 >= t) ? "met" : "not met" }'; }
fmt_int() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 1234567 -> 1,234,567

MACHINE="$(nproc) cores ($(uname -m)), $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo '?'),"
MACHINE+=" $(awk '/^MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
VERSIONS="$("$MALLORND" --version 2>&1 | head -n1), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $( (wrk -v 2>&1 || true) | head -n1 | awk '{print "wrk " $2}')"

md=$TMP/report.md
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "Generated by \`scripts/bench-server.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $MACHINE; $VERSIONS."
  echo "wrk (2 threads, ${DURATION} s per run, 10 s timeout, p50/p95/p99 from wrk's latency histogram), mallornd (default:"
  echo "one I/O thread per core, \`--rate-limit 0\`, \`--max-connections-per-address 4096\` since wrk's connections all"
  echo "come from 127.0.0.1) and nginx (2 workers, sendfile, keepalive, access log off) all run on this machine"
  echo "over loopback, so the client takes CPU from the server and the ratios matter more than the absolute"
  if [ "$REPEAT" -gt 1 ]; then
    echo "figures. Each figure is the best of $REPEAT runs, mallornd and nginx taking turns to go first; the"
    echo "last column sets each of mallornd's runs against the nginx run next to it, to show how far one run moves."
  else
    echo "figures. Each figure is from a single run."
  fi
  echo "Load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER (other work on the machine shows here)."
  echo "Store: the ${#PAIRS[@]} pairs of \`../shared/models/pairs\` as versions 1 -> 2."
  echo
  echo "- **check-update**: \`POST /check-update\` with the sha256 of \`$BIG_PAIR\` version 1 (patch already"
  echo "  built: 200 \`ready\`, $JSON_BYTES bytes of JSON) vs nginx serving that same answer as a static file (GET)."
  echo "- **patch download**: \`GET /patch/<id>\` of the largest patch (\`$PATCH_PAIR\`, $(fmt_int "$PATCH_SIZE") bytes) from"
  echo "  mallornd vs nginx serving a copy of the same file; MiB/s is wrk's Transfer/sec (headers included)."
  [ "$TLS_ROWS" = 1 ] && echo "- **TLS**: nginx configured with mallornd's suite order; negotiated with wrk's OpenSSL: mallornd ${MD_SUITE:-?}, nginx ${NGX_SUITE:-?}."
  echo
  echo "| test | conns | mallornd req/s | nginx req/s | mallornd p50 / p95 / p99 ms | nginx p50 / p95 / p99 ms | mallornd MiB/s | nginx MiB/s | mallornd / nginx | errors (mallornd / nginx) | each run's mallornd / nginx |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for tls in "" tls-; do
    [ -z "$tls" ] || [ "$TLS_ROWS" = 1 ] || continue
    label=${tls:+" (TLS)"}
    for c in "${CONNS[@]}"; do
      m=md-${tls}check-$c n=ngx-${tls}json-$c
      echo "| check-update$label | $c | $(star "$m" "$(fmt_int "${RPS[$m]}")") | $(fmt_int "${RPS[$n]}") | ${P50[$m]} / ${P95[$m]} / ${P99[$m]} | ${P50[$n]} / ${P95[$n]} / ${P99[$n]} | ${XFER[$m]} | ${XFER[$n]} | $(ratio "${RPS[$m]}" "${RPS[$n]}") (req/s) | ${ERRS[$m]} / ${ERRS[$n]} | $(run_ratios "$m" "$n") |"
    done
    for c in "${CONNS[@]}"; do
      m=md-${tls}patch-$c n=ngx-${tls}patch-$c
      echo "| patch download$label | $c | $(fmt_int "${RPS[$m]}") | $(fmt_int "${RPS[$n]}") | ${P50[$m]} / ${P95[$m]} / ${P99[$m]} | ${P50[$n]} / ${P95[$n]} / ${P99[$n]} | $(star "$m" "${XFER[$m]}") | ${XFER[$n]} | $(ratio "${XFER[$m]}" "${XFER[$n]}") (MiB/s) | ${ERRS[$m]} / ${ERRS[$n]} | $(run_ratios "$m" "$n") |"
    done
  done
  echo
  echo "Errors = non-2xx answers plus wrk socket errors (connect/read/write/timeout), over all runs."
  echo
  echo "| other measurement | result |"
  echo "|---|---|"
  echo "| $(fmt_int "$IDLE_N") idle keep-alive connections to a freshly started mallornd (\`tests/bench/idle_connections.py\`: one \`GET /healthz\` on each, then idle) | $(fmt_int "${IDLE_OPEN:-0}") open after ${IDLE_OPEN_S:-?} s; RSS **$RSS_HELD_MIB MiB** while held ($RSS_BEFORE_MIB MiB just before; $FDS_HELD fds, $THREADS_HELD threads); a fresh \`/healthz\` got $FRESH_HEALTH and a fresh check-update $FRESH_CHECK \`${FRESH_STATUS:-?}\` meanwhile; $(fmt_int "${IDLE_USABLE:-0}") of $(fmt_int "${IDLE_OPEN:-0}") still answered a second request when released |"
  echo "| mallornd memory after the wrk runs above (the process that served them) | RSS $RSS_LOAD_MIB MiB afterwards, peak (VmHWM) $HWM_LOAD_MIB MiB; the idle test uses a freshly started mallornd |"
  echo "| time to a ready patch, largest pair \`$BIG_PAIR\` ($(fmt_int "${OLD_SIZE[$BIG_PAIR]}") -> $(fmt_int "${NEW_SIZE[$BIG_PAIR]}") bytes), fresh data dir | **${READY_S} s** from the first check-update (answered $first_code) to 200 \`ready\`, polling every 50 ms; build alone ${READY_BUILD_S:-?} s (server log); patch $(fmt_int "${READY_PATCH_SIZE:-0}") bytes |"
  echo
  echo "| target | result | met |"
  echo "|---|---|---|"
  for tls in "" tls-; do
    [ -z "$tls" ] || [ "$TLS_ROWS" = 1 ] || continue
    label=${tls:+", TLS"}
    for c in "${CONNS[@]}"; do
      r=$(ratio "${RPS[md-${tls}check-$c]}" "${RPS[ngx-${tls}json-$c]}")
      echo "| check-update rate >= 0.8x nginx static JSON, $c connections$label | ${r}x | $(meets "$r" 0.8) |"
    done
    c=${CONNS[-1]}
    r=$(ratio "${P99[ngx-${tls}json-$c]}" "${P99[md-${tls}check-$c]}")  # nginx p99 / mallornd p99 >= 1/3
    echo "| check-update p99 <= 3x nginx's p99, $c connections$label | mallornd ${P99[md-${tls}check-$c]} ms, nginx ${P99[ngx-${tls}json-$c]} ms | $(meets "$r" 0.3333) |"
    for c in "${CONNS[@]}"; do
      want=$([ "$c" -ge 1000 ] && echo 1.0 || echo 0.9)
      r=$(ratio "${XFER[md-${tls}patch-$c]}" "${XFER[ngx-${tls}patch-$c]}")
      echo "| patch download >= ${want}x nginx, $c connections$label | ${r}x | $(meets "$r" "$want") |"
    done
  done
  idle_ok=$(awk -v o="${IDLE_OPEN:-0}" -v n="$IDLE_N" -v u="${IDLE_USABLE:-0}" -v r="$RSS_HELD_MIB" \
    -v h="$FRESH_HEALTH" -v c="$FRESH_CHECK" 'BEGIN{print (o==n && u==o && r+0>0 && r+0<200 && h==200 && c==200) ? "met" : "not met"}')
  echo "| $(fmt_int "$IDLE_N") idle connections held with RSS < 200 MiB, fresh requests still served | $(fmt_int "${IDLE_OPEN:-0}") held, $RSS_HELD_MIB MiB, fresh requests $FRESH_HEALTH / $FRESH_CHECK | $idle_ok |"
  if [ "$IDLE_N" = 10000 ]; then  # issue 18: keep the figure it was filed with
    echo "| 10,000 idle connections in no more than the 76 MiB of issue 18's filing | $RSS_HELD_MIB MiB | $(awk -v r="$RSS_HELD_MIB" 'BEGIN{print (r+0 > 0 && r+0 <= 76) ? "met" : "not met"}') |"
  fi
  stable=$([ ${#CRASHES[@]} -eq 0 ] && echo "met" || echo "not met")
  echo "| (implied) mallornd stays up through the whole benchmark | ${#CRASHES[@]} failure(s) | $stable |"
  echo
  if [ ${#CRASHES[@]} -gt 0 ]; then
    echo "**mallornd did not survive the whole run.** Each time the script restarted it on the same data dir and"
    echo "went on; a \`*\` marks a figure with at least one run after which mallornd was found dead (what wrk"
    echo "measured before that still counts). mallornd was started $MD_STARTS times in all (one planned restart"
    echo "before the idle test). Failures:"
    echo
    for x in "${CRASHES[@]}"; do echo "- $x"; done
    echo
  fi
  if [ ${#FAILED_PAIRS[@]} -gt 0 ]; then
    echo "No patch could be built for: ${FAILED_PAIRS[*]}."
    echo
  fi
} >"$md"

echo
cat "$md"
[ ${#CRASHES[@]} -eq 0 ] || log "mallornd's log (all instances) kept in $FAIL_LOG"

if [ "${BENCH_NO_DOCS:-0}" != 1 ]; then
  python3 - "$DOC" "$md" <<'EOF'
import sys
from pathlib import Path
doc, body = Path(sys.argv[1]), Path(sys.argv[2]).read_text().rstrip("\n")
begin, end = "<!-- server-bench:begin -->", "<!-- server-bench:end -->"
text = doc.read_text() if doc.exists() else "# Benchmarks\n"
lines = text.split("\n")
if begin in lines and end in lines and lines.index(begin) < lines.index(end):
    i, j = lines.index(begin), lines.index(end)
    lines[i + 1:j] = body.split("\n")
    text = "\n".join(lines)
else:
    text = text.rstrip("\n") + "\n\n## Patch server (mallornd)\n\n" + begin + "\n" + body + "\n" + end + "\n"
doc.write_text(text)
EOF
  log "wrote $DOC"
fi

# ---------------------------------------------------------------- rollouts (issue 12)
# check-update with 10 active rollouts and 100,000 known devices vs no rollouts: its own script
# (runnable alone) writing its own section of docs/benchmarks.md. BENCH_ROLLOUTS=0 skips it.
if [ "${BENCH_ROLLOUTS:-1}" = 1 ]; then
  BENCH_DURATION=$DURATION BENCH_REPEAT=$REPEAT "$ROOT/scripts/bench-rollouts.sh" || log "the rollout benchmark failed"
fi

# ---------------------------------------------------------------- scale-out
# The PostgreSQL index vs SQLite, and downloads through nginx's cache (its own section of
# docs/benchmarks.md and the capacity model in docs/scaling.md). BENCH_SCALEOUT=0 skips it.
if [ "${BENCH_SCALEOUT:-1}" = 1 ]; then
  stop_pid "$NGX_PID"; stop_pid "$MD_PID"; NGX_PID=""; MD_PID=""
  "$ROOT/scripts/bench-scaleout.sh" || log "bench-scaleout.sh failed"
fi
