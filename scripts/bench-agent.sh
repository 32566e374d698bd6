#!/usr/bin/env bash
# Edge-agent benchmark: RSS and time of an update on the device (against xdelta3, zstd and bspatch
# applying the same update), and N agents updating at once against one mallornd (against curl
# fetching the whole model). Prints a table and writes the agent section of docs/benchmarks.md.
# usage: scripts/bench-agent.sh [--fleet N] [--pairs NAME ...] [--no-fetch]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
fetch=1
args=()
for a in "$@"; do
  if [[ $a == --no-fetch ]]; then fetch=0; else args+=("$a"); fi
done
# The largest pairs come from npm (MediaPipe pose models up to 27 MB).
if [[ $fetch == 1 ]]; then ../shared/models/fetch-npm.sh >/dev/null || echo "fetch-npm.sh failed: npm pairs skipped"; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target mallorn mallornd mallorn-agent >/dev/null
exec python3 tests/bench/bench_agent.py "${args[@]}"
