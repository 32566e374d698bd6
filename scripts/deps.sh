#!/usr/bin/env bash
# Installs the Debian 12 packages Mallorn needs to build, test and benchmark, if any is missing.
# Shared by run.sh, test.sh and bench.sh; does nothing (and needs no root) when all are present.
set -euo pipefail
# liblzma-dev: the patch body's `lzma` transform (LZMA2 with the old model as preset dictionary),
# which packs novel metadata (flatbuffer tables) tighter than zstd. libbz2-dev: the `bwt` transform
# (bzip2 block sorting), which packs some novel tables and f16 weights tighter still.
# libdivsufsort-dev: suffix arrays for the differ's bsdiff-style matcher (formats/CMakeLists.txt).
# libboost-dev (Beast/Asio), libsqlite3-dev, libsystemd-dev (sd_notify): mallornd. curl, openssl:
# the server's integration tests drive it with real curl over HTTP and HTTPS. systemd: only for
# `systemd-analyze verify` of deploy/*.service. pybind11-dev, python3-dev: the Python package
# (python/); python3-pytest runs its tests, python3-venv the pip-install test, mypy checks its types.
# gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm: firmware/ cross-built for Cortex-M4
# and run under qemu in ctest. libpaho-mqttpp-dev, libpaho-mqtt-dev: mallornd's MQTT bridge, the
# device simulator and the LoRa gateway; mosquitto: the broker their tests spawn. chromium,
# chromium-driver, python3-selenium: the dashboard's browser test (tests/ui/dashboard_test.py).
# debhelper, dpkg-dev, dh-python, help2man, lintian, bash-completion: the Debian packages (debian/,
# scripts/test-packages.sh: dpkg-buildpackage with debhelper's cmake and python3 support, man pages
# from --help, lintian, and bash-completion's loader to test the installed completion). clang-16,
# libclang-rt-16-dev: the ASan+UBSan build (scripts/test-sanitize.sh) and the libFuzzer targets
# (scripts/fuzz.sh) share one clang build with its fuzzer/ASan runtime; clang 16, not Debian's
# default 14, because 14 cannot compile the Asio C++20 coroutines of mallornd and the agent under
# sanitizer instrumentation.
# libpq-dev: mallornd's PostgreSQL index back-end (--database postgresql://...); postgresql: the
# private server (initdb + pg_ctl) the storage tests run the shared suite against.
# tzdata: /usr/share/zoneinfo, the zone database mallornd reads for rollout maintenance windows
# in IANA zones ("Europe/Berlin"); tests/server/time_zone_test.cpp compares against it.
# nginx: the load balancer and patch cache in front of several replicas (deploy/nginx/mallorn.conf),
# started on a private port by tests/server/scaleout_test.cpp and scripts/bench-server.sh.
packages=(build-essential cmake pkg-config git ca-certificates libzstd-dev zstd libssl-dev liblzma-dev libbz2-dev
          nlohmann-json3-dev libspdlog-dev libdivsufsort-dev libgtest-dev googletest python3
          xdelta3 bsdiff time libboost-dev libsqlite3-dev libsystemd-dev curl openssl systemd
          pybind11-dev python3-dev python3-pytest python3-venv mypy
          gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
          libpaho-mqttpp-dev libpaho-mqtt-dev mosquitto
          chromium chromium-driver python3-selenium
          debhelper dpkg-dev dh-python help2man lintian bash-completion
          clang-16 libclang-rt-16-dev libpq-dev postgresql nginx
          tzdata)
if ! command -v dpkg >/dev/null 2>&1; then
  echo "deps.sh: not a Debian-like system; make sure these are installed: ${packages[*]}" >&2
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
