#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, one stage after another (each prints its
# wall and CPU time; a summary closes the run). Every test runs in exactly one build:
#   deps       scripts/deps.sh
#   packages   scripts/test-packages.sh: the Debian packages (dpkg-buildpackage, lintian, install,
#              purge); its build tree is kept in build-deb/ for the next stage
#   release    the Release-only tests (tests/release_only_tests.txt: the Python package's pytest
#              suites, the patch-size guards, the Cortex-M4 image under qemu, the dashboard in
#              chromium, the systemd units) against the programs the packages ship: the packages
#              stage's build tree (-O2, Debian's hardening flags), to which this stage adds only the
#              test binaries. Without that tree (TEST_STAGES without packages, or its build failed)
#              it makes its own Release build in build/.
#   sanitize   scripts/test-sanitize.sh: every other test, built with ASan+UBSan (clang 16)
#   fuzz       scripts/fuzz.sh: the libFuzzer targets, from the sanitize stage's build (no second
#              compile), on their corpora for FUZZ_SECONDS each
# Stages run in this order so no two builds compete for the cores, and the programs are compiled
# once for the packages and the Release-only tests. Every stage runs even when an earlier one
# failed (one CI run shows every failure); the exit status is 1 if any failed.
#   TEST_STAGES   space-separated subset (default: all of the above)
#   FUZZ_SECONDS  fuzzing budget per target (default 10; scripts/fuzz.sh alone: 20)
#   SANITIZE_AREAS only these test areas under ASan+UBSan (default: all; see test-sanitize.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
stages=${TEST_STAGES:-deps packages release sanitize fuzz}
export FUZZ_SECONDS=${FUZZ_SECONDS:-10}
models=${MALLORN_MODELS_DIR:-$PWD/../shared/models}

# The programs and test binaries the Release-only tests run (the other test binaries are built and
# run by the sanitize stage).
release_targets=(mallorn mallornd mallorn-agent mallorn_pyext formats_tests server_release_tests)
package_tree=""  # set by the packages stage of this run
stage_packages() {
  rm -rf build-deb
  PACKAGE_TREE=build-deb MALLORN_MODELS_DIR=$models ./scripts/test-packages.sh
  local rc=$? tree
  tree=$(find build-deb -mindepth 2 -maxdepth 2 -type d -name 'obj-*' 2>/dev/null | head -n 1)
  [[ -n $tree && -x $tree/bin/mallornd && -f $tree/CMakeCache.txt ]] && package_tree=$tree
  return $rc
}
stage_release() {
  local only build=build src=.
  only=$(./scripts/release-only-tests.sh) || return 1
  if [[ -n $package_tree ]]; then
    build=$package_tree src=${package_tree%/*}
    echo "release: testing the package build in $build (adding the test binaries)"
    # The tree keeps its cached compiler flags; this adds the test targets, quietly.
    cmake -S "$src" -B "$build" -DMALLORN_BUILD_TESTS=ON -DMALLORN_MODELS_DIR="$models" \
      -DCMAKE_VERBOSE_MAKEFILE=OFF >/dev/null || return 1
  else
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMALLORN_PYTHON=ON \
      -DMALLORN_MODELS_DIR="$models" || return 1
  fi
  cmake --build "$build" -j2 --target "${release_targets[@]}" &&
    ctest --test-dir "$build" --output-on-failure -j2 -R "$only"
}

summary=()
failed=0
for s in $stages; do
  echo "==== stage $s"
  case $s in
    deps) cmd=(./scripts/deps.sh) ;;
    release) cmd=(stage_release) ;;
    sanitize) cmd=(./scripts/test-sanitize.sh) ;;
    fuzz) cmd=(./scripts/fuzz.sh) ;;
    packages) cmd=(stage_packages) ;;
    *) echo "test.sh: unknown stage '$s'" >&2; exit 2 ;;
  esac
  start=$(date +%s)
  cpu0=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
  if "${cmd[@]}"; then result=ok; else result=FAILED; failed=1; fi
  # CPU seconds of this shell's finished children (the stage), from /proc (clock ticks).
  cpu1=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
  cpu=$(( (cpu1 - cpu0) / $(getconf CLK_TCK) ))
  wall=$(( $(date +%s) - start ))
  line=$(printf '%-9s %-6s wall %3dm%02ds  cpu %3dm%02ds' "$s" "$result" $((wall / 60)) $((wall % 60)) $((cpu / 60)) $((cpu % 60)))
  echo "==== $line"
  summary+=("$line")
done
echo "==== test.sh summary (2 cores: wall ~ cpu/2 when idle)"
printf '  %s\n' "${summary[@]}"
exit $failed
