#!/usr/bin/env bash
# Checks every deploy/*.service with `systemd-analyze verify` (and the offline security score),
# from a checkout, without installing anything:
#   - each unit is copied to a temp directory;
#   - Exec*= commands /usr/bin/NAME, /usr/sbin/NAME, /usr/local/bin/NAME and /usr/local/sbin/NAME
#     are rewritten to build/bin/NAME when that binary exists (verify insists that the
#     executable exists), other commands (/bin/kill ...) are left alone;
#   - any output from verify (unknown keys, typos, bad values, missing executables) is a failure,
#     not only a non-zero exit status, because systemd only *warns* about most mistakes.
# Environment: BUILD_DIR (default build); SECURITY_THRESHOLD (default 20: an exposure level above
# 2.0 fails; systemd-analyze takes it in tenths, 0..100; "off" skips the security check).
# Exit status: 0 all clean, 1 a unit has warnings or errors, 2 missing tools or binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build_dir=${BUILD_DIR:-build}
[[ $build_dir = /* ]] || build_dir="$repo/$build_dir"
threshold=${SECURITY_THRESHOLD:-20}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify-units: systemd-analyze is missing (apt-get install -y systemd)" >&2
  exit 2
fi

shopt -s nullglob
units=(deploy/*.service)
if ((${#units[@]} == 0)); then
  echo "verify-units: no deploy/*.service files" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
for unit in "${units[@]}"; do
  name=$(basename "$unit")
  copy="$tmp/$name"
  missing=()
  : >"$copy"
  # Rewrite the executable of Exec*= lines; keep the prefix characters (-@:+!) systemd allows.
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^(Exec[A-Za-z]*=)([-@:+!]*)(/usr/(local/)?s?bin/)([^[:space:]]+)(.*)$ ]]; then
      bin=${BASH_REMATCH[5]}
      if [[ -x "$build_dir/bin/$bin" ]]; then
        line="${BASH_REMATCH[1]}${BASH_REMATCH[2]}$build_dir/bin/$bin${BASH_REMATCH[6]}"
      elif [[ -e "$build_dir/bin/$bin" || $bin == mallorn* ]]; then
        missing+=("$bin")
      fi
    fi
    printf '%s\n' "$line" >>"$copy"
  done <"$unit"
  if ((${#missing[@]})); then
    echo "verify-units: $unit: ${missing[*]} not built in $build_dir/bin (cmake --build build)" >&2
    exit 2
  fi

  # --man=no: Documentation= points at an installed file, not a man page to look up.
  # --recursive-errors=no: the exit status is about this unit, not the system's units it names.
  if out=$(systemd-analyze verify --man=no --recursive-errors=no "$copy" 2>&1) && [[ -z $out ]]; then
    echo "ok      $unit: systemd-analyze verify"
  else
    echo "FAILED  $unit: systemd-analyze verify"
    printf '%s\n' "$out" | sed "s#$tmp/##g; s#^#        #"
    failed=1
  fi

  if [[ $threshold != off ]]; then
    if sec=$(systemd-analyze security --offline=yes --threshold="$threshold" --no-pager "$copy" 2>&1); then
      echo "ok      $unit: $(printf '%s\n' "$sec" | grep -o 'exposure level.*' | tail -1)"
    else
      echo "FAILED  $unit: security exposure level above $threshold/10"
      printf '%s\n' "$sec" | grep -E '^✗|exposure level' | sed 's#^#        #'
      failed=1
    fi
  fi
done
exit "$failed"
