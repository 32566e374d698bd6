#!/usr/bin/env bash
# The ctest suite under ASan+UBSan: every test but the Release-only ones (tests/release_only_tests.txt,
# each with its reason), in the instrumented build that scripts/fuzz.sh shares
# (scripts/configure-instrumented.sh: clang 16, line tables). The parser robustness tests rely
# on ASan to see over-reads that the Release build cannot. Any ASan/UBSan/LSan report fails the
# process that made it, and the test.
#   SANITIZE_BUILD   build directory (default build-asan; scripts/fuzz.sh uses the same)
#   CTEST_ARGS       extra ctest arguments (e.g. -R Router)
#   SANITIZE_EXCLUDE a regex of more tests to leave out
#   SANITIZE_AREAS   only these test areas (ctest labels, e.g. "core formats"; default: all)
#   SANITIZE_JOBS    tests at a time (default: cores + 1; the suite mostly waits on sockets,
#                    child processes and timeouts: at -j2 it kept 1.1 of 2 cores busy, -j4 took
#                    166 s where -j2 took 226)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
build=${SANITIZE_BUILD:-build-asan}
./scripts/configure-instrumented.sh "$build"
targets=()
label_filter=()
if [ -n "${SANITIZE_AREAS:-}" ]; then
  for a in $SANITIZE_AREAS; do targets+=(--target "${a}_tests"); done
  label_filter=(-L "^($(echo "$SANITIZE_AREAS" | tr ' ' '|'))\$")
  echo "test-sanitize.sh: areas $SANITIZE_AREAS only (SANITIZE_AREAS)"
fi
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
# halt_on_error: the first report ends the process (its test fails). verify_asan_link_order=0: the
# agent's fault-injection tests LD_PRELOAD a shim (tests/agent/fault_shim.c) ahead of the ASan
# runtime, on purpose. detect_stack_use_after_return=0: Asio's coroutine frames confuse it.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:verify_asan_link_order=0:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitize/lsan.supp:print_suppressions=0
exclude=$(./scripts/release-only-tests.sh)
[ -n "${SANITIZE_EXCLUDE:-}" ] && exclude="$exclude|${SANITIZE_EXCLUDE}"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j"${SANITIZE_JOBS:-$(( $(nproc) + 1 ))}" -E "$exclude" "${label_filter[@]}" ${CTEST_ARGS:-}
