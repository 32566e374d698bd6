#!/usr/bin/env bash
# Patch-size / speed / memory benchmark against zstd, xdelta3 and bsdiff; writes docs/benchmarks.md.
# usage: scripts/bench.sh [--fetch] [--quick] [--big MIB]   (see tests/bench/bench.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
exec python3 tests/bench/bench.py "$@"
