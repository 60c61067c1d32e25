#!/bin/bash
# The man pages and bash completions against the programs themselves: every
# subcommand and option that `--help` lists (walked recursively) must appear in
# the man page and in the completion script; the man pages format without
# warnings; the completion functions answer a few real command lines.
#
#   tests/package/docs_test.sh BIN_DIR MAN_DIR COMPLETION_DIR
set -euo pipefail
exec </dev/null

if [[ $# -ne 3 ]]; then
  echo "usage: $0 BIN_DIR MAN_DIR COMPLETION_DIR" >&2
  exit 2
fi
bin=$1 man=$2 completion=$3
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# CLI11's help: option lines start with two spaces and a dash ("  -o,--output
# TEXT"); subcommands are listed under "Subcommands:" until a blank line.
options_of() {
  "$@" --help | sed -n 's/^  \(-[^ ]*\).*/\1/p' | tr ',' '\n' | grep -vx -e -h -e --help || true
}
subcommands_of() {
  "$@" --help | awk '/^Subcommands:/ {on = 1; next} on && /^$/ {on = 0} on && /^  [a-z]/ {print $1}'
}

# Man page text with roff's \- turned back into -.
page_words() { sed 's/\\-/-/g' "$1"; }

check_program() {
  local program=$1 page=$2 script=$3
  shift 3
  local -a path=("$@")
  local text
  text=$(page_words "$page")
  local opt
  for opt in $(options_of "$bin/$program" "${path[@]}"); do
    grep -qE -- "(^|[^a-z-])$opt([^a-z-]|$)" <<<"$text" || fail "$(basename "$page") lacks $program ${path[*]} $opt"
    grep -qE -- "(^|[^a-z-])$opt([^a-z-]|$)" "$script" || fail "completion/$program lacks $program ${path[*]} $opt"
  done
  local sub
  for sub in $(subcommands_of "$bin/$program" "${path[@]}"); do
    grep -qw -- "$sub" <<<"$text" || fail "$(basename "$page") lacks the subcommand $program ${path[*]} $sub"
    grep -qw -- "$sub" "$script" || fail "completion/$program lacks the subcommand $program ${path[*]} $sub"
    # `borderscan worker` is the daemon's protocol, documented as such, not option by option.
    if [[ "$program ${path[*]} $sub" != "borderscan  worker" ]]; then
      check_program "$program" "$page" "$script" "${path[@]}" "$sub"
    fi
  done
}
check_program borderscan "$man/borderscan.1" "$completion/borderscan"
check_program borderscand "$man/borderscand.8" "$completion/borderscand"

# groff's warnings (-ww) name what would render wrongly.
if command -v groff >/dev/null; then
  for page in "$man/borderscan.1" "$man/borderscand.8"; do
    warnings=$(groff -man -ww -z -Tutf8 "$page" 2>&1)
    [[ -z $warnings ]] || fail "groff warns about $(basename "$page"): $warnings"
  done
else
  fail "groff is missing (apt-get install groff-base)"
fi

# Completion answers: COMP_WORDS as bash fills them, COMPREPLY as one line.
complete_line() {
  local program=$1
  shift
  bash --norc --noprofile -c '
    source "$1"
    shift
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    "_${COMP_WORDS[0]}"
    echo "${COMPREPLY[*]}"
  ' complete "$completion/$program" "$program" "$@"
}
expect_completion() {
  local want=$1
  shift
  local got
  got=$(complete_line "$@")
  [[ $got == "$want" ]] || fail "completing '$*': got '$got', want '$want'"
}
expect_completion "scan" borderscan sc
expect_completion "reports report review" borderscan re
expect_completion "high" borderscan scan --flag-severity h
expect_completion "--verdict" borderscan reports --verd
expect_completion "cleared confirmed escalated" borderscan review ID --decision ""
expect_completion "hex" borderscan evidence ID 0 --view h
expect_completion "" borderscan scan --max-depth ""
expect_completion "create" borderscand token cr
expect_completion "nsrl-rds3" borderscand hashset import --format n
expect_completion "station reviewer admin" borderscand token create --role ""
expect_completion "--role" borderscand token create --ro
expect_completion "--replace" borderscand hashset import --rep
# Files as values.
files=$(mktemp -d)
trap 'rm -rf "$files"' EXIT
touch "$files/site.toml" "$files/notes.txt"
mkdir "$files/state"
expect_completion "$files/site.toml" borderscand --config "$files/si"
expect_completion "$files/state" borderscand --data-dir "$files/"
expect_completion "$files/notes.txt" borderscan scan --rules "$files/n"

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
