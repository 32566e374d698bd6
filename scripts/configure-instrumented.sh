#!/usr/bin/env bash
# Configures the instrumented build that scripts/test-sanitize.sh and scripts/fuzz.sh share: clang
# 16, ASan+UBSan (-DMALLORN_SANITIZE) plus libFuzzer coverage (-DMALLORN_FUZZ), line tables only
# (readable stacks at a fraction of -g's compile time), no Python package. -O1 for the engine
# (core, formats, firmware, proto), whose speed the tests and the fuzzers wait on; -O0 for the
# programs' glue and the test sources (CMakeLists.txt, tests/CMakeLists.txt say why). One build
# serves the whole ctest suite and the fuzz targets, so CI compiles the sources once for both.
# Usage: configure-instrumented.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: configure-instrumented.sh BUILD_DIR}
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
flags="-O1 -gline-tables-only"
CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" \
  -DMALLORN_SANITIZE=ON -DMALLORN_FUZZ=ON -DMALLORN_PYTHON=OFF "${launcher[@]}" >/dev/null
