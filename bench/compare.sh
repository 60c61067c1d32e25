#!/usr/bin/env bash
# Times Borderscan against the tool chain an analyst would run instead, and against the one-pass
# bound, in ONE run with the contenders alternating, then checks that Borderscan makes every
# detection the peer pipeline makes.
#
#   bench/compare.sh [--runs N] [--jobs N] [--scaling] [--compiling] [--unallocated] [--peer-parallel] [--no-public]
#                    [--borderscan PATH] [--public-rules DIR] [--markdown FILE] IMAGE
#
#   --runs N          rounds (default 3); odd rounds run the contenders in one order, even rounds
#                     in the reverse order, so slow drift on a shared machine hits both sides
#   --jobs N          borderscan --jobs and yara -p (default: nproc)
#   --scaling         also time borderscan with --jobs 1 (reports the 1-job / N-job ratio)
#   --compiling       also time borderscan compiling its rules on every run, as it did before
#                     --compiled-rules (reports the precompiled / compiling ratio)
#   --unallocated     also time borderscan with --max-unallocated-bytes 0 (no look at unallocated
#                     space and partition gaps; reports the cost of the look: default / off)
#   --peer-parallel   run the peer's file/md5sum/sha1sum/sha256sum with xargs -P JOBS -n 64
#                     (default: plain `xargs -0`, one process at a time, as a user would type it)
#   --no-public       only the shipped rules (skips the public rule set)
#   --borderscan P    the CLI to time (default: build/bin/borderscan of this checkout)
#   --public-rules D  signature-base folder with compile-noext.txt
#                     (default: ../shared/corpus/yara-community/signature-base next to the checkout)
#   --markdown FILE   also write the Markdown result block to FILE
#
# Contenders, per rule set (shipped = this checkout's rules/, public = the 728 signature-base
# files of compile-noext.txt):
#   borderscan  borderscan scan --rules ... --compiled-rules CACHE -q --jobs N -o report.json IMAGE
#               (the cache is made once, untimed, in the warm-up: the daemon too compiles once per
#               rule set, and the peer's yarac is not counted either)
#   peer        tsk_recover -e IMAGE DIR; yara -C RULES.yarc -r -p N DIR; file, md5sum, sha1sum,
#               sha256sum on every file (find DIR -type f -print0 | xargs -0 ...). The rules are
#               compiled once per round with yarac, timed on its own and NOT counted in the peer's
#               time (a user compiles once and reuses), as borderscan's cache is not.
#   bound       cat IMAGE >/dev/null; openssl md5|sha1|sha256 IMAGE; yara -C RULES.yarc IMAGE.
#               bound = (md5 + sha1 + sha256 + yara) / nproc, from the medians of this run.
# Wall time is measured around each command, peak RSS and CPU time come from GNU time (%M, %U,
# %S); the peer's peak RSS is its largest stage's.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
cmdline="bench/compare.sh $*"
runs=3
jobs=$(nproc)
scaling=0
compiling=0
unallocated=0
peer_parallel=0
public=1
borderscan=${BORDERSCAN:-$repo/build/bin/borderscan}
public_dir=$repo/../shared/corpus/yara-community/signature-base
markdown_out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --scaling) scaling=1; shift ;;
    --compiling) compiling=1; shift ;;
    --unallocated) unallocated=1; shift ;;
    --peer-parallel) peer_parallel=1; shift ;;
    --no-public) public=0; shift ;;
    --borderscan) borderscan=$2; shift 2 ;;
    --public-rules) public_dir=$2; shift 2 ;;
    --markdown) markdown_out=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "compare: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -eq 1 ]] || usage
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "compare: --runs needs a positive number" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "compare: --jobs needs a positive number" >&2; exit 2; }

die() { echo "compare: $*" >&2; exit 1; }
exec </dev/null

image=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -f "$image" ]] || die "no such image: $1"
[[ -x "$borderscan" ]] || die "no borderscan at $borderscan (run scripts/test.sh first, or --borderscan PATH)"
for tool in tsk_recover yara yarac file md5sum sha1sum sha256sum openssl python3 find xargs; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install sleuthkit yara file coreutils openssl python3 findutils)"
done
[[ -x /usr/bin/time ]] || die "GNU time is missing: apt-get install time"
/usr/bin/time -f '%M' true 2>/dev/null || die "/usr/bin/time is not GNU time"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/borderscan-compare.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/logs" "$tmp/out"
times=$tmp/times.tsv
: >"$times"

# --- rule sets -----------------------------------------------------------------------------
# shipped: borderscan gets the rules/ folder (YARA rules and hash sets, as by default); yarac gets
# the same .yar/.yara files.
sets=(shipped)
mapfile -t shipped_files < <(find "$repo/rules" -type f \( -name '*.yar' -o -name '*.yara' \) | LC_ALL=C sort)
[[ ${#shipped_files[@]} -gt 0 ]] || die "no YARA files under $repo/rules"
bs_args_shipped=(--rules "$repo/rules")
yarac_args_shipped=("${shipped_files[@]}")

if [[ "$public" == 1 ]]; then
  [[ -f "$public_dir/compile-noext.txt" ]] ||
    die "no $public_dir/compile-noext.txt (give --public-rules DIR, or --no-public)"
  public_dir=$(cd "$public_dir" && pwd)
  mapfile -t public_files < <(sed -e 's/[[:space:]]*$//' -e '/^$/d' "$public_dir/compile-noext.txt" |
    sed "s|^|$public_dir/|")
  bs_args_public=()
  for f in "${public_files[@]}"; do bs_args_public+=(--rules "$f"); done
  yarac_args_public=("${public_files[@]}")
  sets+=(public)
fi

# --- timing helper -------------------------------------------------------------------------
# read_busy: sets busy to the machine's busy CPU time so far (jiffies, all cores, /proc/stat:
# user nice system irq softirq steal). Around each command, busy time minus the command's own CPU
# time is what other people's processes used meanwhile: the machine is shared.
busy=0
read_busy() {
  local u n s q sq st
  # cpu user nice system idle iowait irq softirq steal ...
  read -r _ u n s _ _ q sq st _ </proc/stat
  busy=$((u + n + s + q + sq + st))
}
clk_tck=$(getconf CLK_TCK)

# timed ROUND LABEL OK_EXIT_CODES CMD... : runs CMD (stderr to logs/LABEL.err) and appends
# "round label wall_ns maxrss_kb user_s sys_s busy_jiffies" to times.tsv. Stdout is the caller's.
timed() {
  local round=$1 label=$2 ok=$3 t0 t1 rc=0 rss usr sys b0
  shift 3
  read_busy
  b0=$busy
  t0=$(date +%s%N)
  /usr/bin/time -f '%M %U %S' -o "$tmp/time.out" "$@" 2>"$tmp/logs/$label.err" || rc=$?
  t1=$(date +%s%N)
  read_busy
  case ",$ok," in
    *",$rc,"*) ;;
    *) tail -n 20 "$tmp/logs/$label.err" >&2
       die "$label failed with exit code $rc: $*" ;;
  esac
  read -r rss usr sys < <(tail -n 1 "$tmp/time.out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$label" $((t1 - t0)) "$rss" "$usr" "$sys" \
    $((busy - b0)) >>"$times"
}

if [[ "$peer_parallel" == 1 ]]; then
  xargs_opts="-0 -r -P $jobs -n 64"
else
  xargs_opts="-0 -r"
fi

# --- contenders ----------------------------------------------------------------------------
# borderscan SET JOBS ROUND [compiling|nounalloc]
run_borderscan() {
  local set=$1 j=$2 round=$3 label="borderscan-$1" args
  [[ "$j" == "$jobs" ]] || label="borderscan-$1-j$j"
  if [[ "$set" == shipped ]]; then args=("${bs_args_shipped[@]}"); else args=("${bs_args_public[@]}"); fi
  if [[ "${4:-}" == compiling ]]; then
    label="borderscan-$1-compiling"
  else
    args+=(--compiled-rules "$tmp/borderscan-$set.yarc")
  fi
  if [[ "${4:-}" == nounalloc ]]; then
    label="borderscan-$1-nounalloc"
    args+=(--max-unallocated-bytes 0)
  fi
  # exit 0 clean, 1 flagged, 3 incomplete are all finished scans; 2 is an error
  timed "$round" "$label" 0,1,3 "$borderscan" scan "${args[@]}" -q --jobs "$j" \
    -o "$tmp/out/$label.$round.json" "$image"
}

# yarac SET ROUND: compiles the set (its own timed row)
run_yarac() {
  local set=$1 round=$2 args
  if [[ "$set" == shipped ]]; then args=("${yarac_args_shipped[@]}"); else args=("${yarac_args_public[@]}"); fi
  rm -f "$tmp/$set.yarc"
  timed "$round" "yarac-$set" 0 yarac "${args[@]}" "$tmp/$set.yarc"
}

# peer SET ROUND: the pipeline, one timed row per stage
run_peer() {
  local set=$1 round=$2 dir=$tmp/recovered p=peer-$1
  rm -rf "$dir"
  timed "$round" "$p:tsk_recover" 0 tsk_recover -e "$image" "$dir" >"$tmp/logs/$p.tsk_recover.out"
  timed "$round" "$p:yara" 0 yara -C -r -p "$jobs" "$tmp/$set.yarc" "$dir" >"$tmp/out/$p.yara.$round.txt"
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  timed "$round" "$p:file" 0 bash -c 'set -o pipefail; find "$1" -type f -print0 | xargs '"$xargs_opts"' file' _ "$dir" \
    >"$tmp/out/$p.file.$round.txt"
  local h
  for h in md5sum sha1sum sha256sum; do
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timed "$round" "$p:$h" 0 bash -c 'set -o pipefail; find "$1" -type f -print0 | xargs '"$xargs_opts"' '"$h" _ "$dir" \
      >"$tmp/out/$p.$h.$round.txt"
  done
  find "$dir" -type f | wc -l >"$tmp/out/$p.count.$round.txt"
  # keep what the detection check needs: the recovered path prefix
  printf '%s\n' "$dir" >"$tmp/out/peer.prefix"
  rm -rf "$dir"
}

run_bound() {
  local what=$1 round=$2
  case "$what" in
    cat) timed "$round" "bound:cat" 0 cat "$image" >/dev/null ;;
    md5|sha1|sha256) timed "$round" "bound:openssl-$what" 0 openssl "$what" "$image" >/dev/null ;;
    yara-*) timed "$round" "bound:$what" 0 yara -C "$tmp/${what#yara-}.yarc" "$image" \
      >"$tmp/out/bound.$what.$round.txt" ;;
  esac
}

items=()
for set in "${sets[@]}"; do
  items+=("borderscan $set $jobs" "peer $set")
  if [[ "$scaling" == 1 && "$jobs" != 1 ]]; then items+=("borderscan $set 1"); fi
  if [[ "$compiling" == 1 ]]; then items+=("borderscan $set $jobs compiling"); fi
  if [[ "$unallocated" == 1 ]]; then items+=("borderscan $set $jobs nounalloc"); fi
done
items+=("bound cat" "bound md5" "bound sha1" "bound sha256")
for set in "${sets[@]}"; do items+=("bound yara-$set"); done

# --- machine and versions ------------------------------------------------------------------
{
  echo "cmdline=$cmdline"
  echo "image=$image"
  echo "image_bytes=$(stat -c %s "$image")"
  echo "nproc=$(nproc)"
  echo "clk_tck=$clk_tck"
  echo "jobs=$jobs"
  echo "runs=$runs"
  echo "peer_parallel=$peer_parallel"
  echo "mem_total_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "borderscan_version=borderscan $("$borderscan" --version 2>&1 | head -n1)$(git -C "$repo" rev-parse --short HEAD 2>/dev/null | sed 's/^/ at commit /')$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (uncommitted changes)')"
  echo "yara_version=$(yara --version)"
  echo "tsk_version=$(tsk_recover -V 2>&1 | head -n1)"
  echo "openssl_version=$(openssl version)"
  echo "file_version=$(file --version 2>&1 | head -n1)"
  echo "shipped_yara_files=${#shipped_files[@]}"
  if [[ "$public" == 1 ]]; then echo "public_yara_files=${#public_files[@]}"; echo "public_dir=$public_dir"; fi
  echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$tmp/meta.env"

echo "compare: $(basename "$image") ($(($(stat -c %s "$image") / 1000000)) MB), $runs rounds, jobs $jobs, sets: ${sets[*]}" >&2

# warm-up (untimed): page cache for the image, the binaries and the rules
cat "$image" >/dev/null
cat "${shipped_files[@]}" >/dev/null
if [[ "$public" == 1 ]]; then cat "${public_files[@]}" >/dev/null; fi
for set in "${sets[@]}"; do
  run_yarac "$set" 0
  run_borderscan "$set" "$jobs" 0 # writes borderscan's compiled-rules cache
done

for ((round = 1; round <= runs; round++)); do
  order=("${items[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#items[@]} - 1; i >= 0; i--)); do order+=("${items[i]}"); done
  fi
  for set in "${sets[@]}"; do run_yarac "$set" "$round"; done
  for item in "${order[@]}"; do
    read -r kind a b c <<<"$item"
    echo "compare: round $round/$runs: $item" >&2
    case "$kind" in
      borderscan) run_borderscan "$a" "$b" "$round" "$c" ;;
      peer) run_peer "$a" "$round" ;;
      bound) run_bound "$a" "$round" ;;
    esac
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp/meta.env"
echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$tmp/meta.env"

python3 "$repo/bench/compare_report.py" "$tmp" "${sets[@]}" | tee "$tmp/report.md"
if [[ -n "$markdown_out" ]]; then
  sed -n '/^<!-- compare.sh result begin -->$/,/^<!-- compare.sh result end -->$/p' "$tmp/report.md" >"$markdown_out"
fi
