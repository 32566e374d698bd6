#!/usr/bin/env bash
# The ctest suite built with ASan+UBSan (-DMALLORN_SANITIZE=ON) in build-asan: the parser
# robustness tests rely on ASan to see over-reads that the Release build (scripts/test.sh) cannot.
# GCC 12 (clang 14 cannot compile the Asio C++20 coroutines of mallornd and the agent under
# sanitizer instrumentation), -O1 -g1 (line tables for readable stacks at a fraction of -g's
# compile time), no Python package (pybind11 modules cannot load an ASan runtime into the
# Debian interpreter). Any ASan/UBSan/LSan report fails the process that made it, and the test.
#   SANITIZE_BUILD   build directory (default build-asan)
#   CTEST_ARGS       extra ctest arguments (e.g. -R Router)
#   SANITIZE_EXCLUDE a regex of more tests to leave out (e.g. to fit a CI time budget)
#   SANITIZE_AREAS   test areas to build and run (e.g. "core formats proto firmware"; default:
#                    every area, the whole suite). scripts/test.sh sets a subset for CI: see there.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
build=${SANITIZE_BUILD:-build-asan}
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=gcc-12 CXX=g++-12 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DMALLORN_SANITIZE=ON -DMALLORN_PYTHON=OFF "${launcher[@]}" >/dev/null
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
# Excluded, with the reason (the Release stage runs all of them):
#   firmware.qemu_cortex_m4  a Cortex-M4 image cross-built by arm-none-eabi-gcc and run in qemu:
#                            no sanitizer exists for it.
#   ui.dashboard             headless chromium clicking through the dashboard: minutes of browser
#                            time; the routes it calls run under ASan in the server tests.
#   deploy.systemd_units     systemd-analyze verify of unit files: none of our code runs.
exclude='^(firmware\.qemu_cortex_m4|ui\.dashboard|deploy\.systemd_units)$'
[ -n "${SANITIZE_EXCLUDE:-}" ] && exclude="$exclude|${SANITIZE_EXCLUDE}"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -E "$exclude" "${label_filter[@]}" ${CTEST_ARGS:-}
