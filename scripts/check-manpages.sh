#!/usr/bin/env bash
# Checks that the man pages document every option the programs' --help lists: every -x/--xxx
# token of `mallorn --help`, of each `mallorn COMMAND --help`, of `mallornd --help` and of
# `mallorn-agent --help`, and every command and agent action, must appear in mallorn.1,
# mallornd.8 and mallorn-agent.8 respectively (plain or gzipped roff).
#   scripts/check-manpages.sh BIN_DIR MAN_DIR
#   e.g. build/bin build/docs/man (cmake -DMALLORN_MANPAGES=ON), or /usr/bin /usr/share/man
# MAN_DIR is searched for NAME.SECTION[.gz] in itself and in its manSECTION/ subdirectory.
# Exit status: 0 all documented, 1 something missing, 2 usage or a missing file.
set -euo pipefail
if (($# != 2)); then
  echo "usage: $0 BIN_DIR MAN_DIR" >&2
  exit 2
fi
bin_dir=$1 man_dir=$2
failed=0

# The page as text: roff escapes for minus, fonts and zero-width breaks removed.
page_text() {
  local name=$1 section=$2 f
  for f in "$man_dir/$name.$section" "$man_dir/$name.$section.gz" \
           "$man_dir/man$section/$name.$section" "$man_dir/man$section/$name.$section.gz"; do
    if [[ -f $f ]]; then
      if [[ $f == *.gz ]]; then zcat -- "$f"; else cat -- "$f"; fi | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g'
      return 0
    fi
  done
  echo "check-manpages: no $name.$section in $man_dir" >&2
  return 2
}

# Option tokens of a --help text: -x or --xxx at the start of a word (after space, [ or ( ).
options_of() {
  grep -oE '(^|[[:space:][(|])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[[:space:][(|]+//' | sort -u
}

# check NAME SECTION WHAT TOKEN...: each TOKEN must appear in the page as a whole word.
check() {
  local name=$1 section=$2 what=$3 text token missing=()
  shift 3
  text=$(page_text "$name" "$section") || exit 2
  for token in "$@"; do
    grep -qE -- "(^|[^A-Za-z0-9-])${token}([^A-Za-z0-9-]|\$)" <<<"$text" || missing+=("$token")
  done
  if ((${#missing[@]})); then
    echo "FAILED  $name.$section: $what missing: ${missing[*]}"
    failed=1
  else
    echo "ok      $name.$section: all $# $what documented"
  fi
}

for p in mallorn mallornd mallorn-agent; do
  [[ -x $bin_dir/$p ]] || { echo "check-manpages: $bin_dir/$p is not an executable" >&2; exit 2; }
done

# mallorn: the top-level help, the command list, and each command's own help.
top=$("$bin_dir/mallorn" --help)
mapfile -t commands < <(sed -n '/^commands:/,/^[^ ]/p' <<<"$top" | grep -oE '^  [a-z][a-z0-9-]*' | tr -d ' ')
((${#commands[@]})) || { echo "check-manpages: no commands in mallorn --help" >&2; exit 2; }
all_help=$top
for c in "${commands[@]}"; do
  all_help+=$'\n'$("$bin_dir/mallorn" "$c" --help)
done
mapfile -t opts < <(options_of <<<"$all_help")
check mallorn 1 "options of mallorn and its commands" "${opts[@]}"
check mallorn 1 "commands" "${commands[@]/#/mallorn }"

mapfile -t opts < <("$bin_dir/mallornd" --help | options_of)
check mallornd 8 "options" "${opts[@]}"

agent_help=$("$bin_dir/mallorn-agent" --help)
mapfile -t opts < <(options_of <<<"$agent_help")
check mallorn-agent 8 "options" "${opts[@]}"
# The actions: indented words at the start of a line after the usage.
mapfile -t actions < <(grep -oE '^  [a-z][a-z0-9-]+ ' <<<"$agent_help" | tr -d ' ' | sort -u)
((${#actions[@]})) || { echo "check-manpages: no actions in mallorn-agent --help" >&2; exit 2; }
check mallorn-agent 8 "actions" "${actions[@]}"
exit "$failed"
