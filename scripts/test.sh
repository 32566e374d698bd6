#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: dependencies, Release build, ctest (which
# includes the Python package's pytest suites, python.api and python.pip_install), then the Debian
# packages (scripts/test-packages.sh: their own build, lintian, dpkg -i, use, purge; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMALLORN_PYTHON=ON && cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
# After ctest, so the package build (a second Release build) does not compete with it for the cores.
./scripts/test-packages.sh
