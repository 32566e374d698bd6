#!/usr/bin/env bash
# The Debian packages, end to end, on this machine (as root; re-runs itself with sudo otherwise):
#   1. builds them the Debian way (dpkg-buildpackage -b) from a copy of the source tree;
#   2. lintian: no error and no warning may remain (each accepted warning is an override with its
#      reason in debian/*.lintian-overrides);
#   3. installs them with dpkg -i, then from the installed paths only: mallorn --version, a signed
#      diff/verify/patch round trip on a real model pair (CLI and Python), the man pages against
#      every --help option, bash completion, systemd-analyze verify of the installed units,
#      enabled-not-started, conffiles, the agent's system user and example configuration, and
#      /usr/bin/mallornd serving /healthz on a private port;
#   4. removes them (state and conffiles stay), purges them (nothing of them stays).
# The packages are purged on any exit, failure included, and nothing is left in the source tree.
# Refuses to run if any of them is installed already (it would purge them).
# Environment: MALLORN_MODELS_DIR (default ../shared/models), DEB_BUILD_OPTIONS (default
# "parallel=2 nocheck"), PACKAGE_DEBUG_FLAGS (default -g1; "" for Debian's -g), KEEP_DEBS=DIR
# to copy the built .deb and .changes files there,
# PREBUILT=DIR to skip step 1 and test the .deb and .changes files in DIR (from KEEP_DEBS),
# PACKAGE_TREE=DIR to build in DIR (emptied first) and keep it: DIR/mallorn-VERSION/obj-*/ is the
# package build's CMake tree, whose programs scripts/test.sh's release stage then tests.
# Exit status: 0 all passed, 1 a check failed, 2 cannot run (tools, root, packages present).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "test-packages: needs root (dpkg -i) or sudo" >&2; exit 2; }
  exec sudo --preserve-env=MALLORN_MODELS_DIR,DEB_BUILD_OPTIONS,KEEP_DEBS,PREBUILT,PACKAGE_TREE,PACKAGE_DEBUG_FLAGS,CCACHE_DIR "$0" "$@"
fi

packages=(mallorn mallornd mallorn-agent python3-mallorn libmallorn-lite-dev)
for tool in dpkg-buildpackage dh lintian systemd-analyze help2man curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test-packages: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done
[[ -r /usr/share/bash-completion/bash_completion ]] || { echo "test-packages: bash-completion is missing (scripts/deps.sh)" >&2; exit 2; }
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
    echo "test-packages: $p is installed (or has config files left); this test would purge it" >&2
    exit 2
  fi
done

models=${MALLORN_MODELS_DIR:-$repo/../shared/models}
pair=$models/pairs/coral-mnv2-quant_2020-to-2021a
[[ -f $pair/old.tflite && -f $pair/new.tflite ]] || { echo "test-packages: no model pair in $pair" >&2; exit 2; }

version=$(sed -nE 's/^project\(mallorn VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -l debian/changelog -S Version)
failed=0
ok() { echo "ok      $*"; }
fail() { echo "FAILED  $*"; failed=1; }
if [[ $deb_version == "$version" || $deb_version == "$version"-* ]]; then
  ok "debian/changelog version $deb_version matches the project version $version"
else
  fail "debian/changelog version $deb_version does not match the project version $version (CMakeLists.txt)"
fi

work=$(mktemp -d /tmp/mallorn-packages.XXXXXX)
chmod 0755 "$work"  # the round trip below runs programs as the agent's user too
user_existed=0
getent passwd mallorn >/dev/null && user_existed=1
private_existed=0
[[ -d /var/lib/private ]] && private_existed=1
server_pid=""
cleanup() {
  local rc=$?
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  local left=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$' && left+=("$p")
  done
  if ((${#left[@]})); then
    echo "test-packages: purging ${left[*]}" >&2
    dpkg --purge "${left[@]}" >/dev/null 2>&1 || echo "test-packages: could not purge ${left[*]}" >&2
  fi
  # The package keeps its system user on purge (Debian's convention); the test removes the one
  # it caused to be created, so a run leaves the machine as it found it.
  if ((user_existed == 0)) && getent passwd mallorn >/dev/null; then
    userdel mallorn 2>/dev/null || true
    getent group mallorn >/dev/null && groupdel mallorn 2>/dev/null || true
  fi
  # systemd's /var/lib/private, if the state simulated below created it.
  ((private_existed == 0)) && rmdir /var/lib/private 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- 1. build -------------------------------------------------------------------------------
# A copy of the tree (without build directories and .git): dpkg-buildpackage writes obj-*/,
# debian/<package>/ and the .deb files next to the tree, none of which belongs in the checkout.
if [[ -n ${PREBUILT:-} ]]; then
  find "$PREBUILT" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.ddeb' -o -name '*.changes' \
    -o -name '*.buildinfo' \) -exec cp -t "$work" {} +
  ok "using the packages in $PREBUILT (PREBUILT): not built by this run"
else
  build_dir=$work
  if [[ -n ${PACKAGE_TREE:-} ]]; then
    # It is emptied as root: never the source tree or anything above it (PACKAGE_TREE=. by mistake).
    tree_abs=$(realpath -m "$PACKAGE_TREE")
    [[ $repo/ == "${tree_abs%/}"/* ]] &&
      { echo "test-packages: PACKAGE_TREE=$PACKAGE_TREE holds the source tree; refusing to empty it" >&2; exit 2; }
    rm -rf "$tree_abs" && mkdir -p "$tree_abs"
    build_dir=$(cd "$PACKAGE_TREE" && pwd)
  fi
  src=$build_dir/mallorn-$version
  mkdir "$src"
  tar -C "$repo" --exclude=./build --exclude='./build-*' --exclude='./obj-*' --exclude=./.git \
      --exclude=./python/build -cf - . | tar -C "$src" -xf -
  export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=2 nocheck}
  # Line tables only in these test packages' debug symbols (-g1 after dpkg-buildflags' -g; the
  # code is the same): full -g made GCC take 55% longer per file, a minute and a half of CI.
  # PACKAGE_DEBUG_FLAGS="" builds with Debian's default -g, as a release build does.
  debug_flags=${PACKAGE_DEBUG_FLAGS--g1}
  if [[ -n $debug_flags ]]; then
    export DEB_CFLAGS_APPEND="${DEB_CFLAGS_APPEND:-} $debug_flags" DEB_CXXFLAGS_APPEND="${DEB_CXXFLAGS_APPEND:-} $debug_flags"
  fi
  build_env=()
  if [[ -n ${CCACHE_DIR:-} && -d /usr/lib/ccache ]]; then
    # Developers' machines: reuse their compiler cache (CI has none; it builds once anyway).
    build_env=(PATH="/usr/lib/ccache:$PATH" CCACHE_DIR="$CCACHE_DIR" CCACHE_BASEDIR="$work")
  fi
  start=$SECONDS
  if ! (cd "$src" && env "${build_env[@]}" dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
    tail -n 60 "$work/build.log"
    echo "FAILED  dpkg-buildpackage -b (log above)"
    exit 1
  fi
  ok "dpkg-buildpackage -b: $((SECONDS - start)) s (DEB_BUILD_OPTIONS=\"$DEB_BUILD_OPTIONS\", debug flags \"${debug_flags:-Debian default}\")"
  if [[ $build_dir != "$work" ]]; then
    # The kept tree belongs to whoever ran us through sudo (the release stage builds in it).
    [[ -n ${SUDO_UID:-} ]] && chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$build_dir"
    find "$build_dir" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.ddeb' -o -name '*.changes' \
      -o -name '*.buildinfo' \) -exec cp -t "$work" {} +
  fi
fi
changes=$(ls "$work"/mallorn_"$deb_version"_*.changes)
debs=()
for p in "${packages[@]}"; do
  f=$(ls "$work/${p}_${deb_version}"_*.deb 2>/dev/null || true)
  [[ -n $f ]] || { fail "dpkg-buildpackage built no $p package"; continue; }
  debs+=("$f")
done
((failed == 0)) || exit 1
ok "packages: ${debs[*]##*/}"
if [[ -n ${KEEP_DEBS:-} ]]; then
  # Everything the .changes lists (debug symbol packages included), for lintian with PREBUILT.
  mkdir -p "$KEEP_DEBS" && find "$work" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.ddeb' \
    -o -name '*.changes' -o -name '*.buildinfo' \) -exec cp -t "$KEEP_DEBS" {} +
fi

# --- 2. lintian -----------------------------------------------------------------------------
# --fail-on error,warning: any error or any warning not overridden fails; the overrides carry
# their reasons in debian/*.lintian-overrides. Informational tags are printed, not fatal.
if lintian --allow-root --fail-on error,warning --display-info --show-overrides --tag-display-limit 0 \
     "$changes" >"$work/lintian.log" 2>&1; then
  ok "lintian: no errors, no warnings ($(grep -c '^[IP]: ' "$work/lintian.log" || true) info tags, $(grep -c '^O: ' "$work/lintian.log" || true) overridden):"
  sed 's/^/        /' "$work/lintian.log"
else
  fail "lintian"
  sed 's/^/        /' "$work/lintian.log"
fi

# The maintainer scripts do what debian/rules asks of dh_installsystemd: enable, no start on
# install, try-restart after an upgrade (no stop before it), stop on removal.
for p in mallornd mallorn-agent; do
  d=$work/control-$p
  dpkg-deb -e "$work/${p}_${deb_version}"_*.deb "$d"
  unit="'$p.service'"
  if grep -q "deb-systemd-helper enable $unit" "$d/postinst" && grep -q "deb-systemd-invoke try-restart $unit" "$d/postinst" &&
     ! grep -qE 'deb-systemd-invoke (start|restart) ' "$d/postinst" && ! grep -q 'deb-systemd-invoke stop' "$d/preinst" 2>/dev/null &&
     grep -q 'deb-systemd-invoke stop' "$d/prerm"; then
    ok "$p maintainer scripts: enable, no start on install, try-restart after upgrade, stop on remove"
  else
    fail "$p maintainer scripts do not enable / try-restart / stop as debian/rules intends (in $d)"
  fi
done
grep -q 'systemd-sysusers.*mallorn-agent.conf' "$work/control-mallorn-agent/postinst" \
  && ok "mallorn-agent postinst creates its user with systemd-sysusers" || fail "mallorn-agent postinst runs no systemd-sysusers"
grep -q 'sysusers\|adduser\|useradd' "$work/control-mallornd/postinst" \
  && fail "mallornd postinst creates a user (its unit uses DynamicUser=)"

# --- 3. install and use ---------------------------------------------------------------------
if ! dpkg -i "${debs[@]}" >"$work/install.log" 2>&1; then
  sed 's/^/        /' "$work/install.log"
  fail "dpkg -i"
  exit 1
fi
ok "dpkg -i ${packages[*]}"

# Everything below runs the installed files with a minimal environment, from an empty directory.
run() { (cd "$work/run" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work/run" LC_ALL=C.UTF-8 "$@"); }
mkdir -p "$work/run"

out=$(run mallorn --version) && [[ $out == "mallorn $version" ]] && [[ $(run sh -c 'command -v mallorn') == /usr/bin/mallorn ]] \
  && ok "/usr/bin/mallorn --version: $out" || fail "mallorn --version printed '$out', expected 'mallorn $version'"

# A signed patch on a real model pair, verified and applied by the installed CLI.
cp "$pair/old.tflite" "$pair/new.tflite" "$work/run/"
if run mallorn keygen -o release >/dev/null &&
   run mallorn diff old.tflite new.tflite -o update.mlrn --target-version 2 --sign release.key >/dev/null &&
   run mallorn verify old.tflite update.mlrn --pubkey release.pub --json >"$work/verify.json" &&
   grep -q '"signature_valid": *true' "$work/verify.json" && grep -q '"valid": *true' "$work/verify.json" &&
   run mallorn patch old.tflite update.mlrn -o restored.tflite --pubkey release.pub >/dev/null &&
   cmp -s "$work/run/restored.tflite" "$work/run/new.tflite"; then
  ok "mallorn keygen/diff --sign/verify/patch: $(stat -c %s "$work/run/update.mlrn")-byte patch restores new.tflite byte for byte"
else
  fail "mallorn diff/patch round trip on $pair"
fi
# A tampered patch must be refused (the round trip above could pass with a no-op check).
cp "$work/run/update.mlrn" "$work/run/bad.mlrn"
printf '\xff' | dd of="$work/run/bad.mlrn" bs=1 seek=$(( $(stat -c %s "$work/run/bad.mlrn") - 8 )) conv=notrunc status=none
if run mallorn patch old.tflite bad.mlrn -o bad.tflite --pubkey release.pub >/dev/null 2>&1 || [[ -e $work/run/bad.tflite ]]; then
  fail "mallorn patch accepted a patch with a flipped byte (or left an output)"
else
  ok "mallorn patch refuses a patch with a flipped byte and writes nothing"
fi

# The Python package, from /usr/bin/python3 in isolated mode (no PYTHONPATH, no user site).
py_out=$(run /usr/bin/python3 -I -c '
import mallorn, sys
assert mallorn.__file__.startswith("/usr/lib/python3/dist-packages/mallorn/"), mallorn.__file__
r = mallorn.apply_patch("old.tflite", "update.mlrn", "py.tflite")
assert r.is_valid(), r
print(mallorn.__file__)
' 2>&1) && cmp -s "$work/run/py.tflite" "$work/run/new.tflite" \
  && ok "/usr/bin/python3 -I: import mallorn ($py_out); mallorn.apply_patch restores new.tflite" \
  || fail "python3 -c 'import mallorn' / apply_patch: $py_out"

# Man pages: every option of every --help (scripts/check-manpages.sh). Images that exclude
# /usr/share/man from dpkg (path-exclude) get the pages from the .deb files instead.
man_dir=/usr/share/man
if [[ ! -e /usr/share/man/man1/mallorn.1.gz ]]; then
  for d in "${debs[@]}"; do dpkg-deb -x "$d" "$work/debs-x"; done
  man_dir=$work/debs-x/usr/share/man
  echo "        (/usr/share/man is excluded from dpkg here: checking the man pages in the .deb files)"
fi
if "$repo/scripts/check-manpages.sh" /usr/bin "$man_dir" >"$work/man.log" 2>&1; then
  ok "man pages document every --help option:"
else
  fail "man pages:"
fi
sed 's/^/        /' "$work/man.log"

# Bash completion, as bash-completion loads it on first use of `mallorn`.
comp=$(run bash -c '
  source /usr/share/bash-completion/bash_completion
  __load_completion mallorn || exit 1
  t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        COMPREPLY=(); _mallorn mallorn "${@: -1}" "${@: -2:1}"; echo "${COMPREPLY[*]}"; }
  t mallorn di; t mallorn diff old.tflite --ta; t mallorn diff --profile ""; t mallorn patch old.tflite up' 2>&1)
if [[ $comp == $'diff\n--target-version\nstandard mcu\nupdate.mlrn' ]]; then
  ok "bash completion: commands, options, option values and files from the installed mallorn"
else
  fail "bash completion gave: $(tr '\n' '|' <<<"$comp")"
fi

# The installed units: systemd-analyze verify with their real paths; any output is a failure.
# Documentation=man:... is checked by verify itself when man(1) is there.
man_flag=--man=no
command -v man >/dev/null 2>&1 && [[ $man_dir == /usr/share/man ]] && man_flag=--man=yes
for unit in /lib/systemd/system/mallornd.service /lib/systemd/system/mallorn-agent.service; do
  if [[ ! -f $unit ]]; then
    fail "$unit is not installed"
  elif v=$(systemd-analyze verify "$man_flag" --recursive-errors=no "$unit" 2>&1) && [[ -z $v ]]; then
    ok "systemd-analyze verify $man_flag $unit"
  else
    fail "systemd-analyze verify $unit:"
    sed 's/^/        /' <<<"$v"
  fi
done

# Enabled, not started (debian/rules: dh_installsystemd --no-start).
for unit in mallornd.service mallorn-agent.service; do
  if [[ -L /etc/systemd/system/multi-user.target.wants/$unit ]]; then ok "$unit is enabled"
  else fail "$unit is not enabled (no multi-user.target.wants link)"; fi
  if [[ -d /run/systemd/system ]] && systemctl is-active --quiet "$unit"; then fail "$unit was started on install"; fi
done

# Conffiles.
for pc in mallornd:/etc/mallorn/mallornd.env mallorn-agent:/etc/mallorn/agent.json; do
  p=${pc%%:*} f=${pc#*:}
  if dpkg-query -W -f='${Conffiles}\n' "$p" | grep -q "^ $f "; then ok "$f is a conffile of $p"
  else fail "$f is not a conffile of $p"; fi
done

# The agent's system user (sysusers.d) and no user for mallornd (DynamicUser=).
if IFS=: read -r _ _ uid _ _ _ shell < <(getent passwd mallorn) && ((uid < 1000)) &&
   [[ $shell == */nologin ]]; then
  ok "system user mallorn (uid $uid, $shell) for mallorn-agent"
else
  fail "no system user mallorn with a nologin shell"
fi
getent passwd mallornd >/dev/null && fail "a user mallornd exists: the unit uses DynamicUser="

# The example /etc/mallorn/agent.json parses: with a real key in place of its placeholder path
# and a model directory here, the agent provisions a slot and reports it.
if run /usr/bin/python3 -c '
import json
c = json.load(open("/etc/mallorn/agent.json"))
c["public_key"] = "release.pub"
c["models"][0]["dir"] = "slots/" + c["models"][0]["name"]
json.dump(c, open("agent.json", "w"))' &&
   run mallorn-agent --config agent.json install detector old.tflite >/dev/null &&
   st=$(run mallorn-agent --config agent.json status --json) && grep -q detector <<<"$st"; then
  ok "the example /etc/mallorn/agent.json loads (mallorn-agent install + status)"
else
  fail "mallorn-agent with the example /etc/mallorn/agent.json: ${st:-}"
fi

# The installed server: a store with the pair, a private port, /healthz and a check-update.
mkdir -p "$work/run/models/coral" && cp "$pair/old.tflite" "$work/run/models/coral/1.tflite" &&
  cp "$pair/new.tflite" "$work/run/models/coral/2.tflite"
(cd "$work/run" && exec env -i PATH=/usr/bin:/bin /usr/bin/mallornd --models models --data data \
   --listen 127.0.0.1:0 --port-file port --log-level warn) >"$work/mallornd.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/run/port ]] && break; sleep 0.1; done
port=$(cat "$work/run/port" 2>/dev/null || true)
if [[ -n $port ]] && curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null; then
  ok "/usr/bin/mallornd serves /healthz on 127.0.0.1:$port"
  if curl -fsS "http://127.0.0.1:$port/ui/" | grep -q 'src="app.js"'; then
    ok "/usr/bin/mallornd serves the dashboard from /usr/share/mallorn/ui"
  else
    fail "/usr/bin/mallornd does not serve /ui/ from the installed files"
  fi
else
  fail "/usr/bin/mallornd did not come up: $(tail -n 5 "$work/mallornd.log")"
fi
kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true
server_pid=""

# mallorn_lite from /usr/src/mallorn-lite, as a firmware project would use it (host compiler here).
if cmake -S /usr/src/mallorn-lite -B "$work/lite" -DCMAKE_BUILD_TYPE=Release >"$work/lite.log" 2>&1 &&
   cmake --build "$work/lite" -j2 >>"$work/lite.log" 2>&1 && [[ -f $work/lite/libmallorn_lite.a ]] &&
   printf '#include <mallorn_lite.h>\nint main(void) { return sizeof(struct mallorn_lite_ctx) == 1024 ? 0 : 1; }\n' >"$work/lite.c" &&
   cc -std=c99 -o "$work/lite-size" "$work/lite.c" >>"$work/lite.log" 2>&1 && "$work/lite-size"; then
  ok "libmallorn-lite-dev: /usr/src/mallorn-lite builds; <mallorn_lite.h> from /usr/include compiles"
else
  fail "libmallorn-lite-dev: $(tail -n 5 "$work/lite.log")"
fi

# An upgrade (the same version again): the maintainer scripts' upgrade paths run, a locally
# edited conffile is kept, and the packages stay configured.
echo "MALLORN_LOG_LEVEL=debug # test-packages" >>/etc/mallorn/mallornd.env
if dpkg -i "${debs[@]}" >"$work/upgrade.log" 2>&1 && grep -q '# test-packages' /etc/mallorn/mallornd.env &&
   [[ $(dpkg-query -W -f='${db:Status-Abbrev}' mallornd) == "ii " ]]; then
  ok "reinstall over itself (upgrade path) keeps the edited /etc/mallorn/mallornd.env"
else
  fail "upgrade path: $(tail -n 5 "$work/upgrade.log")"
fi

# --- 4. remove, purge -----------------------------------------------------------------------
# What the packages installed, and the state their services would have made under systemd
# (the units cannot run here without systemd as PID 1): purge must take all of it.
for p in "${packages[@]}"; do dpkg-query -L "$p"; done | sort -u >"$work/installed.list"
mkdir -p /var/lib/private/mallornd/patches /var/lib/mallorn/detector/a
chmod 0700 /var/lib/private
ln -sfn private/mallornd /var/lib/mallornd
echo state >/var/lib/private/mallornd/index.sqlite
echo state >/var/lib/mallorn/detector/journal.json
# Byte-compiled files dh_python3 makes at install time (removed by its prerm).
find /usr/lib/python3/dist-packages/mallorn -name '*.pyc' | grep -q . \
  && ok "python3-mallorn is byte-compiled on install" || fail "no .pyc under /usr/lib/python3/dist-packages/mallorn"

if dpkg --remove "${packages[@]}" >"$work/remove.log" 2>&1; then ok "dpkg --remove"
else fail "dpkg --remove"; sed 's/^/        /' "$work/remove.log"; fi
kept=(/etc/mallorn/mallornd.env /etc/mallorn/agent.json /var/lib/mallornd/index.sqlite /var/lib/mallorn/detector/journal.json)
missing=()
for f in "${kept[@]}"; do [[ -e $f ]] || missing+=("$f"); done
((${#missing[@]} == 0)) && ok "remove keeps conffiles and state: ${kept[*]}" || fail "remove deleted ${missing[*]}"
[[ -e /usr/bin/mallornd ]] && fail "remove left /usr/bin/mallornd"

if dpkg --purge "${packages[@]}" >"$work/purge.log" 2>&1; then ok "dpkg --purge"
else fail "dpkg --purge"; sed 's/^/        /' "$work/purge.log"; fi
left=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$' && left+=("package $p")
done
# Files (not directories shared with the system, like /usr/bin) the packages had installed.
while IFS= read -r f; do
  [[ -e $f && ! -d $f ]] && left+=("$f")
done <"$work/installed.list"
for f in /etc/mallorn /var/lib/mallornd /var/lib/private/mallornd /var/lib/mallorn \
         /usr/lib/python3/dist-packages/mallorn /usr/src/mallorn-lite /usr/share/doc/mallornd \
         /etc/systemd/system/multi-user.target.wants/mallornd.service \
         /etc/systemd/system/multi-user.target.wants/mallorn-agent.service; do
  [[ -e $f || -L $f ]] && left+=("$f")
done
while IFS= read -r f; do left+=("$f"); done < <(find /var/lib/systemd/deb-systemd-helper-enabled \
  /var/lib/systemd/deb-systemd-helper-masked -name '*mallorn*' 2>/dev/null)
if ((${#left[@]} == 0)); then
  ok "purge leaves nothing behind ($(wc -l <"$work/installed.list") installed paths, state, conffiles, unit links checked; the system user mallorn stays by design)"
else
  fail "left behind after purge: ${left[*]}"
fi

((failed == 0)) && echo "test-packages: all checks passed" || echo "test-packages: some checks FAILED"
exit "$failed"
