#!/usr/bin/env bash
# Prints tests/release_only_tests.txt as one ctest regex (its lines joined with '|'): the tests the
# Release stage runs (ctest -R) and the ASan+UBSan stage leaves out (ctest -E).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -vE '^[[:space:]]*(#|$)' tests/release_only_tests.txt | paste -sd '|' -
