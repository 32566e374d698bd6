#!/usr/bin/env bash
# Installs the Debian packages Mallorn needs to build, test and benchmark, if any is missing.
set -euo pipefail
packages=(build-essential cmake pkg-config git ca-certificates libzstd-dev zstd libssl-dev
          nlohmann-json3-dev libspdlog-dev libdivsufsort-dev libgtest-dev googletest python3 xdelta3 bsdiff time)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
