#!/usr/bin/env bash
# The whole ctest suite built with ASan+UBSan (-DMALLORN_SANITIZE=ON) in build-asan: the parser
# robustness tests rely on ASan to see over-reads that the Release build (scripts/test.sh) cannot.
# RelWithDebInfo at -O1 (readable stacks, tolerable speed), no Python package (pybind11 modules
# cannot load an ASan runtime into the pyenv/Debian interpreter). Any ASan/UBSan/LSan report fails
# the process that made it, and with it the test.
#   SANITIZE_BUILD   build directory (default build-asan)
#   CTEST_ARGS       extra ctest arguments (e.g. -R agent)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
build=${SANITIZE_BUILD:-build-asan}
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DMALLORN_SANITIZE=ON -DMALLORN_PYTHON=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# verify_asan_link_order=0: the agent's fault-injection tests LD_PRELOAD a shim (tests/agent/
# fault_shim.c) ahead of the ASan runtime, on purpose.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:verify_asan_link_order=0:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Excluded, with the reason:
#   firmware.qemu_cortex_m4  a Cortex-M4 image cross-built by arm-none-eabi-gcc and run in qemu:
#                            no sanitizer exists for it; the Release job runs it.
exclude='^firmware\.qemu_cortex_m4$'
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -E "$exclude" ${CTEST_ARGS:-}
