#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp) in the instrumented build that
# scripts/test-sanitize.sh shares (scripts/configure-instrumented.sh: clang 16, ASan+UBSan, coverage)
# and runs each on its checked-in seed corpus (tests/fuzz/corpus/<target>/) for a time budget.
# Fails on the first crash, leak, timeout or undefined behaviour, printing the reproducer's path.
#   FUZZ_SECONDS   budget per target (default 20)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_BUILD     build directory (default build-asan, the sanitizer suite's)
# Reproduce a crash: build-asan/bin/<target> build-asan/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
seconds=${FUZZ_SECONDS:-20}
build=${FUZZ_BUILD:-build-asan}
./scripts/configure-instrumented.sh "$build"
cmake --build "$build" -j"$(nproc)" --target mallorn_fuzzers
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls ./*_fuzz.cpp | sed 's|^\./||; s|\.cpp$||')}
# One target per core at a time (each fuzzer is single-threaded): the budget is per target, the
# wall time about targets * budget / cores.
run_target() {
  local t=$1 seeds=tests/fuzz/corpus/$1 work=$build/corpus/$1 artifacts=$build/artifacts/$1/
  mkdir -p "$work" "$artifacts" "$seeds"   # work: what the fuzzer learns; not checked in
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
       "$build/bin/$t" "$work" "$seeds" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
       -max_len=65536 -artifact_prefix="$artifacts" -print_final_stats=1 >"$build/$t.log" 2>&1; then
    echo "== $t: ${seconds}s on $(find "$seeds" -type f | wc -l) seeds, $(grep -E '^stat::number_of_executed_units' "$build/$t.log" | awk '{print $2}') runs, no finding"
  else
    tail -60 "$build/$t.log"
    echo "FAIL $t: reproducer in $artifacts" >&2
    touch "$build/$t.failed"
  fi
}
rm -f "$build"/*.failed
jobs_max=$(nproc)
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  run_target "$t" &
done
wait
failed=()
for t in $targets; do [ -e "$build/$t.failed" ] && failed+=("$t"); done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: ${failed[*]} failed" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran ${seconds}s without a finding"
