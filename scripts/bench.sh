#!/usr/bin/env bash
# Patch-size / speed / memory benchmark against zstd --patch-from, xdelta3 and bsdiff, all in the
# same run; prints a table and writes docs/benchmarks.md. Minutes, so not part of ctest.
# usage: scripts/bench.sh [--fetch] [--quick] [--big MIB]   (tests/bench/bench.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target mallorn mallorn_codec_bench >/dev/null
exec python3 tests/bench/bench.py "$@"
