#!/usr/bin/env bash
# Scans each image with two borderscan binaries and checks that the reports are the same, timing
# fields aside: for a change that must not alter what a scan reports (a refactoring).
#
#   bench/compare-reports.sh [--rules PATH]... [--public-rules DIR] [--arg ARG]... [--jobs N]
#                            [--gunzip] [--keep DIR] OLD_BIN NEW_BIN IMAGE...
#
#   --rules PATH        rule file or folder, passed to both binaries (repeatable; default: this
#                       checkout's rules/, so that both scan with the same shipped rules whatever
#                       their compiled-in default is)
#   --public-rules DIR  the public rule set instead: every file listed in DIR/compile-noext.txt,
#                       one --rules each, as bench/compare.sh passes it
#   --arg ARG           one more argument for `borderscan scan` (repeatable), e.g.
#                       --arg --max-depth --arg 1 to compare the limit paths
#   --jobs N            borderscan --jobs (default 2)
#   --gunzip            for IMAGE.gz, also compare the scans of its decompressed copy
#   --keep DIR          keep both reports of each image in DIR (default: a temporary folder,
#                       removed at the end)
#
# Each binary runs `borderscan scan -q --jobs N -o FILE [RULES] [ARGS] IMAGE`. The fields that
# differ from run to run (started_at, finished_at, timings.duration_ms, scan_id) are deleted with
# jq and the two documents diffed; the files as written are also compared byte for byte with those
# values masked, so a difference that jq would normalise away (number or string formatting) counts
# too, as do different exit codes. Prints one line per image; on a difference, which image and the
# start of the diff. Exits 1 if any image differs or a scan wrote no report, 2 on bad usage.
#
# With more than one job, a scan that hits limits in several files is not reproducible even with
# one binary: limits_hit is in the order the workers hit them, and which members the scan-wide
# budget (--max-expanded-bytes) still covers depends on which worker gets there first. Compare
# such runs with --jobs 1.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
rules=()
public_dir=
extra=()
jobs=2
gunzip=0
keep=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rules) rules+=(--rules "$2"); shift 2 ;;
    --public-rules) public_dir=$2; shift 2 ;;
    --arg) extra+=("$2"); shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --gunzip) gunzip=1; shift ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "compare-reports: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -ge 3 ]] || usage
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "compare-reports: --jobs needs a positive number" >&2; exit 2; }
old_bin=$1
new_bin=$2
shift 2

die() { echo "compare-reports: $*" >&2; exit 2; }
exec </dev/null
command -v jq >/dev/null 2>&1 || die "missing tool: jq (apt-get install jq)"
for bin in "$old_bin" "$new_bin"; do
  [[ -x "$bin" ]] || die "not an executable: $bin"
done
if [[ -n "$public_dir" ]]; then
  [[ -f "$public_dir/compile-noext.txt" ]] || die "no $public_dir/compile-noext.txt"
  public_dir=$(cd "$public_dir" && pwd)
  while IFS= read -r f; do
    rules+=(--rules "$public_dir/$f")
  done < <(sed -e 's/[[:space:]]*$//' -e '/^$/d' "$public_dir/compile-noext.txt")
fi
if [[ ${#rules[@]} -eq 0 ]]; then
  rules=(--rules "$repo/rules")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/borderscan-reports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=${keep:-$tmp/reports}
mkdir -p "$out"

# The report without the fields that change from run to run, as jq prints it.
normalised() {
  jq 'del(.started_at, .finished_at, .timings.duration_ms, .scan_id)' "$1"
}

# The report as written, with the same fields' values masked.
masked() {
  sed -E -e 's/"(started_at|finished_at|scan_id)": *"[^"]*"/"\1":"-"/g' \
    -e 's/"duration_ms": *[0-9]+/"duration_ms":0/g' "$1"
}

# scan BIN IMAGE REPORT: prints the exit code.
scan() {
  local rc=0
  "$1" scan -q --jobs "$jobs" -o "$3" "${rules[@]}" "${extra[@]}" "$2" 2>"$3.stderr" || rc=$?
  echo "$rc"
}

differ=0
n=0
compare_one() {
  local image=$1 label=$2
  n=$((n + 1))
  local name
  name=$(printf '%03d-%s' "$n" "$(basename "$label")")
  local old="$out/$name.old.json" new="$out/$name.new.json"
  local old_rc new_rc
  old_rc=$(scan "$old_bin" "$image" "$old")
  new_rc=$(scan "$new_bin" "$image" "$new")
  for report in "$old" "$new"; do
    if ! jq -e . "$report" >/dev/null 2>&1; then
      echo "NO REPORT  $label ($report; stderr: $(head -c 300 "$report.stderr"))"
      differ=1
      return
    fi
  done
  local why=()
  [[ "$old_rc" == "$new_rc" ]] || why+=("exit code $old_rc -> $new_rc")
  if ! diff -u <(normalised "$old") <(normalised "$new") >"$tmp/diff"; then
    why+=("report")
  elif ! cmp -s <(masked "$old") <(masked "$new"); then
    diff -u <(masked "$old") <(masked "$new") >"$tmp/diff" || true
    why+=("report bytes")
  fi
  if [[ ${#why[@]} -eq 0 ]]; then
    echo "same       $label ($(jq -r '.verdict + ", " + (.summary.files|tostring) + " files, " +
      (.summary.limits_hit|tostring) + " limits hit"' "$new"))"
    return
  fi
  differ=1
  echo "DIFFERENT  $label: ${why[*]}"
  if [[ -s "$tmp/diff" ]]; then
    head -n 40 "$tmp/diff" | cut -c1-240 | sed 's/^/    /'
  fi
}

for image in "$@"; do
  [[ -f "$image" ]] || die "no such image: $image"
  compare_one "$image" "$image"
  if [[ "$gunzip" == 1 && "$image" == *.gz ]]; then
    plain="$tmp/$(basename "${image%.gz}")"
    gunzip -c "$image" >"$plain"
    compare_one "$plain" "$image (gunzipped)"
    rm -f "$plain"
  fi
done

if [[ "$differ" != 0 ]]; then
  echo "compare-reports: reports differ (see above)" >&2
  exit 1
fi
echo "compare-reports: $n scan(s), all reports the same"
