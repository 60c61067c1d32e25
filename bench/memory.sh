#!/usr/bin/env bash
# Peak memory of `borderscan scan` as the image grows (issue #6: at most 10 % more for a 4 GiB
# image than for the 1 GiB one). Scans each image with the shipped rules and, unless --no-public,
# with the public rule set, alternating the images each round, and prints peak RSS (GNU time %M),
# wall and CPU time, files in the report, and the ratio of each image's median peak RSS to the
# first image's.
#
#   bench/memory.sh [--runs N] [--no-public] [--borderscan PATH] [--public-rules DIR] IMAGE...
#
# Typical: bench/make-workload.sh /tmp/wl-full && bench/make-workload.sh --large /tmp/wl-large
#          bench/memory.sh /tmp/wl-full/ext4.img /tmp/wl-large/ext4.img
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=2
public=1
borderscan=$repo/build/bin/borderscan
public_dir=$repo/../shared/corpus/yara-community/signature-base
usage() {
  sed -n '2,12p' "$0" >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --no-public) public=0; shift ;;
    --borderscan) borderscan=$2; shift 2 ;;
    --public-rules) public_dir=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || usage
[[ -x "$borderscan" ]] || { echo "memory.sh: no $borderscan (run scripts/test.sh first)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "memory.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
command -v jq >/dev/null || { echo "memory.sh: needs jq" >&2; exit 1; }

declare -A rule_args
rule_args[shipped]=""
sets=(shipped)
if [[ "$public" == 1 ]]; then
  [[ -f "$public_dir/compile-noext.txt" ]] || { echo "memory.sh: no $public_dir/compile-noext.txt" >&2; exit 1; }
  public_dir=$(cd "$public_dir" && pwd)
  args=""
  while IFS= read -r f; do
    f=${f%%[[:space:]]}
    [[ -n "$f" ]] && args+=" --rules $public_dir/$f"
  done <"$public_dir/compile-noext.txt"
  rule_args[public]=$args
  sets+=(public)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "borderscan: $borderscan; $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$runs"); do
  for set in "${sets[@]}"; do
    for image in "$@"; do
      cat "$image" >/dev/null  # warm page cache, as compare.sh does
      # shellcheck disable=SC2086 # the rule arguments are words
      /usr/bin/time -f "%M %e %U %S" -o "$tmp/time" "$borderscan" scan -q ${rule_args[$set]} \
        -o "$tmp/report.json" "$image" || true
      # GNU time prefixes "Command exited with non-zero status" (a flagged image exits 1).
      read -r rss wall user sys < <(tail -n 1 "$tmp/time")
      files=$(jq '.summary.files' "$tmp/report.json")
      echo "$set $image $rss $wall $user $sys $files" >>"$tmp/rows"
      printf 'round %s %-7s %-40s peak RSS %7.1f MiB  wall %6.1f s  CPU %6.1f s  files %s\n' "$round" "$set" \
        "$image" "$(echo "$rss / 1024" | bc -l)" "$wall" "$(echo "$user + $sys" | bc -l)" "$files"
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "median peak RSS per image and rule set, and ratio to the first image:"
python3 - "$tmp/rows" "$@" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
images = sys.argv[2:]
for s in dict.fromkeys(r[0] for r in rows):
    base = None
    for img in images:
        rss = statistics.median(int(r[2]) for r in rows if r[0] == s and r[1] == img)
        base = base or rss
        files = [r[6] for r in rows if r[0] == s and r[1] == img][0]
        print("  %-7s %-40s %7.1f MiB  files %-6s ratio %.3f" % (s, img, rss / 1024, files, rss / base))
PY
