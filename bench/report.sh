#!/usr/bin/env bash
# Report benchmark of borderscand (issue #12): an ext4 image with many small files is uploaded to
# the real daemon and scanned, then its report is downloaded by many clients at once. The daemon's
# RSS (and, separately, the scan worker's) is sampled all along, phase by phase. Not a timed test:
# it prints figures and only fails when something is wrong (scan failed, a download incomplete or
# different from the others, paging not matching the report).
#
#   bench/report.sh [--bin-dir DIR] [--files N] [--clients N] [--keep] [--markdown FILE]
#                   [--cache-dir DIR] [--tmp-dir DIR] [--rss-cap-mib N] [--limit-rate RATE]
#
#   --bin-dir DIR      where borderscand and borderscan (its worker) are (default: $BORDERSCAN_BIN_DIR,
#                      else build/bin of this checkout)
#   --files N          small files in the image (default 100000)
#   --clients N        concurrent downloads of the report (default 64)
#   --keep             keep the work folder (daemon log, config, RSS samples, one report copy)
#   --markdown FILE    also write the result table as Markdown to FILE
#   --cache-dir DIR    where built images are cached (default: $XDG_CACHE_HOME/borderscan-bench,
#                      else ~/.cache/borderscan-bench); an image is reused while its generator and
#                      recipe are unchanged. Delete the folder to reclaim the space (~600 MB sparse
#                      per 100 000 files)
#   --tmp-dir DIR      parent of the work folder (default: $TMPDIR, else /tmp); the spool (a copy of
#                      the image) and the downloaded reports go there
#   --rss-cap-mib N    safety net for shared machines: when the daemon's RSS passes N MiB the
#                      downloads still running are stopped and the table says so (default: half of
#                      MemAvailable at start; 0 = none). Not a target
#   --limit-rate RATE  each download client reads at most RATE (curl --limit-rate syntax: 2M = 2 MiB/s),
#                      like kiosks on slow links: responses then stay open, and in memory, longer.
#                      Default: no limit (loopback speed)
#
# Phases (marked in time; RSS every 100 ms from /proc/PID/status): idle (5 s before the upload),
# upload (curl -T until the 202), scan (while the worker process runs), store (worker gone, until
# GET /api/v1/scans/ID says done), after store (5 s, nothing running), downloads (N clients of GET /api/v1/scans/ID/report at once, curl to files),
# after (30 s; RSS read at 5 s and 30 s), paging (GET /api/v1/reports/ID/files?limit=1000 to the
# end), checks (client side: SHA-256 of each download, report parsed; the daemon is idle).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
here=$repo/bench
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
cmdline="bench/report.sh $*"
files=100000
clients=64
keep=0
markdown_out=
bin_dir=${BORDERSCAN_BIN_DIR:-$repo/build/bin}
cache_dir=${XDG_CACHE_HOME:-$HOME/.cache}/borderscan-bench
tmp_parent=${TMPDIR:-/tmp}
rss_cap_mib=
interval=0.1
limit_rate=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --markdown) markdown_out=$2; shift 2 ;;
    --cache-dir) cache_dir=$2; shift 2 ;;
    --tmp-dir) tmp_parent=$2; shift 2 ;;
    --rss-cap-mib) rss_cap_mib=$2; shift 2 ;;
    --limit-rate) limit_rate=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "report: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "report: $*" >&2; exit 1; }
exec </dev/null

[[ "$files" =~ ^[1-9][0-9]*$ ]] || die "--files needs a positive number"
[[ "$clients" =~ ^[1-9][0-9]*$ ]] || die "--clients needs a positive number"
[[ -z "$rss_cap_mib" || "$rss_cap_mib" =~ ^[0-9]+$ ]] || die "--rss-cap-mib needs a number"
[[ -z "$limit_rate" || "$limit_rate" =~ ^[0-9]+[kKmMgG]?$ ]] || die "--limit-rate needs a curl rate such as 500K or 2M"
[[ -z "$markdown_out" || -d "$(dirname "$markdown_out")" ]] || die "no folder for --markdown $markdown_out"
[[ -n "$markdown_out" ]] && markdown_out=$(cd "$(dirname "$markdown_out")" && pwd)/$(basename "$markdown_out")

need_tool() { # TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "missing tool: $1 (apt-get install $2)"
}
need_tool curl curl
need_tool jq jq
need_tool python3 python3
need_tool mke2fs e2fsprogs
need_tool debugfs e2fsprogs
need_tool sha256sum coreutils
need_tool truncate coreutils
need_tool awk mawk
need_tool findmnt util-linux
[[ -d "$bin_dir" ]] || die "no folder $bin_dir (build first: cmake --build build --target borderscand borderscan; or --bin-dir DIR)"
bin_dir=$(cd "$bin_dir" && pwd)
daemon=$bin_dir/borderscand
[[ -x "$daemon" ]] || die "no borderscand in $bin_dir (build it, or --bin-dir DIR / BORDERSCAN_BIN_DIR)"
[[ -x "$bin_dir/borderscan" ]] || die "no borderscan (the scan worker) in $bin_dir"
[[ -r /proc/self/status ]] || die "needs /proc (Linux)"
helper=$here/report_report.py

if [[ -z "$rss_cap_mib" ]]; then
  rss_cap_mib=$(awk '/^MemAvailable:/ { printf "%d", $2 / 2048 }' /proc/meminfo)
fi

# --- the image (cached) -----------------------------------------------------------------------------
mkdir -p "$cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)
image=
summary=
build_tmp=
tree_tmp=
daemon_pid=
sampler_pid=
tmp=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [[ -n "$sampler_pid" ]] && kill -0 "$sampler_pid" 2>/dev/null; then
    kill -TERM "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
  fi
  stop_daemon
  [[ -n "$build_tmp" ]] && rm -rf "$build_tmp"
  [[ -n "$tree_tmp" ]] && rm -rf "$tree_tmp"
  if [[ -n "$tmp" ]]; then
    if [[ "$keep" == 1 ]]; then
      echo "report: kept $tmp"
    else
      rm -rf "$tmp"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Where the source tree is written: /dev/shm when it and the memory have room (writing and removing
# 100 000 small files on a busy disk takes minutes, in tmpfs seconds), else the cache folder. The
# image does not depend on it (checked: same SHA-256 either way), so this is not part of the cache key.
tree_parent() {
  local need=$((files * 8192 + (256 << 20))) shm_avail mem_avail
  if [[ -d /dev/shm && -w /dev/shm ]]; then
    shm_avail=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -n 1 | tr -d ' ')
    mem_avail=$(awk '/^MemAvailable:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)
    if [[ -n "$shm_avail" ]] && ((shm_avail >= need && mem_avail >= need + (2 << 30))); then
      echo /dev/shm
      return
    fi
  fi
  echo "$cache_dir"
}

build_image() {
  build_tmp=$(mktemp -d "$cache_dir/.build.XXXXXX")
  tree_tmp=$(mktemp -d "$(tree_parent)/borderscan-report-tree.XXXXXX")
  local t0=$SECONDS src=$tree_tmp/tree
  # Determinism, as bench/make-workload.sh: fixed clock, zone, locale, umask and mke2fs configuration.
  umask 022
  export TZ=UTC LC_ALL=C.UTF-8 SOURCE_DATE_EPOCH=1672531200
  export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
  export MKE2FS_CONFIG=$here/mke2fs.conf  # Debian 12's ext4 features, pinned
  echo "report: generating $files files (bench/report_gen.py) in $tree_tmp ..." >&2
  python3 "$here/report_gen.py" "$files" "$src" "$build_tmp/summary.json"
  # Size: the files' blocks, a 16 KiB allowance per folder, the inode tables, 10 % slack and room for
  # the journal and group metadata. Inodes: one per file and folder, plus spare.
  local size_mib inodes
  read -r size_mib inodes < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
inodes = s["files"] + s["dirs"] + 1024
need = (s["block_bytes"] + s["dirs"] * 16384 + inodes * 256) * 1.1 + (96 << 20)
print(int(need) // (1 << 20) + 1, inodes)' "$build_tmp/summary.json")
  echo "report: tree generated in $((SECONDS - t0)) s; building a $size_mib MiB ext4 image with $inodes inodes (mke2fs -d) ..." >&2
  truncate -s "${size_mib}M" "$build_tmp/img"
  mke2fs -q -F -t ext4 -N "$inodes" -U 0b5e0004-0000-4000-8000-000000000004 -L BSREPORT \
    -E "root_owner=0:0,hash_seed=0b5e0004-0000-4000-8000-000000000004" -d "$src" "$build_tmp/img"
  # mke2fs -d takes atime, ctime and owner from the host: pin them to the (seeded) mtime and root.
  (cd "$src" && find . -printf '/%P\t%Ts\n' | LC_ALL=C sort) | awk -F'\t' '{
    printf "sif \"%s\" atime @%s\nsif \"%s\" atime_extra 0\nsif \"%s\" ctime @%s\nsif \"%s\" ctime_extra 0\n", $1, $2, $1, $1, $2, $1
    printf "sif \"%s\" uid 0\nsif \"%s\" gid 0\n", $1, $1
  }' >"$build_tmp/debugfs.cmds"
  echo "report: image made at $((SECONDS - t0)) s; pinning times and owners (debugfs) ..." >&2
  debugfs -w -f "$build_tmp/debugfs.cmds" "$build_tmp/img" >/dev/null 2>"$build_tmp/debugfs.err" ||
    { cat "$build_tmp/debugfs.err" >&2; die "debugfs failed"; }
  if grep -v '^debugfs [0-9.]* (' "$build_tmp/debugfs.err" >&2; then die "debugfs complained"; fi
  local sha
  sha=$(sha256sum "$build_tmp/img" | cut -d' ' -f1)
  python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
s.update(image_bytes=int(sys.argv[2]), image_sha256=sys.argv[3], key=sys.argv[4])
json.dump(s, open(sys.argv[5], "w"), indent=1, ensure_ascii=False)' \
    "$build_tmp/summary.json" "$(stat -c %s "$build_tmp/img")" "$sha" "$key" "$build_tmp/final.json"
  mv "$build_tmp/img" "$image"
  mv "$build_tmp/final.json" "$summary"
  echo "report: image ready at $((SECONDS - t0)) s; removing the source tree ..." >&2
  rm -rf "$build_tmp" "$tree_tmp"
  build_tmp=
  tree_tmp=
  echo "report: image built in $((SECONDS - t0)) s: $image" >&2
}

# The cache key covers everything the image depends on: the generator, this recipe (build_image's own
# text, mke2fs.conf included) and the mke2fs version.
key=$( { declare -f build_image; mke2fs -V 2>&1 | head -n 1; cat "$here/report_gen.py" "$here/workload_gen.py" "$here/mke2fs.conf"; } | sha256sum | cut -c1-12)
image=$cache_dir/report-ext4-$files-$key.img
summary=$cache_dir/report-ext4-$files-$key.json
if [[ -s "$image" && -s "$summary" ]]; then
  echo "== image (cached): $image"
else
  rm -f "$image" "$summary"
  build_image
  echo "== image: $image"
fi
image_bytes=$(stat -c %s "$image")
jq -r '"   \(.files) files in \(.dirs) folders (depth \(.max_depth)), \(.bytes) bytes of content, \(.duplicates) duplicates; sha256 \(.image_sha256)"' "$summary"
image_desc=$(jq -r --arg b "$image_bytes" '"ext4 (mke2fs -d, 4 KiB blocks), \($b | tonumber / 1048576 | floor) MiB, \(.files) files in \(.dirs) folders (depth ≤ \(.max_depth)), \(.bytes / 1e6 | floor) MB of text/CSV/JSON/log/Markdown/HTML/mail, \(.duplicates) duplicates, sha256 \(.image_sha256[0:16])…"' "$summary")

# --- work folder and disk --------------------------------------------------------------------------
mkdir -p "$tmp_parent"
tmp=$(mktemp -d "$tmp_parent/borderscan-report.XXXXXX")
[[ "$tmp" != *[\"\\]* ]] || die "the work path must not contain quotes or backslashes: $tmp"
data=$tmp/data
mkdir -p "$data" "$tmp/downloads"
avail=$(df -B1 --output=avail "$tmp" | tail -n 1 | tr -d ' ')
# The spool copy of the image, the downloads (about 1.2 KB of report per file, a guess) and 1 GiB.
need=$((image_bytes + (clients + 1) * files * 1200 + (1 << 30)))
((avail >= need)) || die "not enough room under $tmp_parent: $((avail >> 20)) MiB free, about $((need >> 20)) MiB" \
  "needed (spool copy + $clients report copies + 1 GiB); use --tmp-dir on another disk or fewer --clients"
echo "== work folder $tmp ($(findmnt -no SOURCE,FSTYPE -T "$tmp" | tr -s ' ' ' '), $((avail >> 30)) GiB free)"

# --- the daemon -------------------------------------------------------------------------------------
cfg=$tmp/borderscand.toml
max_connections=$((clients + 64 > 256 ? clients + 64 : 256))
# Every client comes from 127.0.0.1: the per-address cap (newer than the first release; set only
# where the binary knows it) must let them all in.
per_client=
if "$daemon" --print-config 2>/dev/null | grep -q "^max_connections_per_client = "; then
  per_client="max_connections_per_client = 0"
fi
cat >"$cfg" <<EOF
# bench/report.sh: the defaults of config/borderscand.toml except for these keys.
[http]
listen = "127.0.0.1:0"
max_connections = $max_connections
$per_client

[storage]
data_dir = "$data"
min_free_spool_bytes = 268435456
keep_images = false
keep_failed_hours = 0

[jobs]
# One scan at a time, using every core (workers = 0 would be one per core with one thread each).
workers = 1

[rules]
paths = ["$repo/rules"]
EOF
"$daemon" --config "$cfg" --print-config >"$tmp/effective.toml" 2>"$tmp/print-config.err" ||
  { cat "$tmp/print-config.err" >&2; die "$daemon rejects the configuration $cfg"; }
eff() { # KEY: its effective value
  awk -F' = ' -v k="$1" '$1 == k { print $2; exit }' "$tmp/effective.toml"
}
config_desc="workers $(eff workers), scan_threads $(eff scan_threads) (0 = cores / workers), io_threads $(eff io_threads), worker.memory_limit_bytes $(eff memory_limit_bytes), worker.max_output_bytes $(eff max_output_bytes), max_connections $(eff max_connections), isolation $(eff isolation); everything else default"
version=$("$daemon" --version 2>&1 | head -n 1)
start_daemon "$daemon" "$cfg" "$tmp"
echo "== borderscand ($version) pid $daemon_pid ready on $url"
echo "   $config_desc"

# --- measurement -------------------------------------------------------------------------------------
phases=$tmp/phases.tsv
: >"$phases"
mark() { printf '%s\t%s\n' "$(date +%s.%N)" "$1" >>"$phases"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$daemon_pid/status"; }
utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }
start=$(utc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$helper" sample --pid "$daemon_pid" --out "$tmp/samples.tsv" --interval "$interval" \
  --cap-kb $((rss_cap_mib * 1024)) --cap-file "$tmp/rss-cap-hit" &
sampler_pid=$!
cap_desc="none"; ((rss_cap_mib > 0)) && cap_desc="$rss_cap_mib MiB"

mark idle
echo "== idle 5 s (RSS cap for the downloads: $cap_desc)"
sleep 5

mark upload
echo "== upload ($((image_bytes >> 20)) MiB, curl -T)"
curl -sS -f -T "$image" -X POST -H 'Content-Type: application/octet-stream' -H 'X-Station: bench-report' \
  -o "$tmp/upload.json" "$url/api/v1/scans?label=report-bench&filename=report-ext4.img" ||
  die "upload failed: $(cat "$tmp/upload.json" 2>/dev/null)"
mark scan
id=$(jq -r .id "$tmp/upload.json")
[[ "$id" =~ ^[0-9a-f]{32}$ ]] || die "no scan id in the upload's answer: $(cat "$tmp/upload.json")"
echo "   scan $id accepted (daemon RSS $(rss_mib) MiB); scanning ..."
last_print=0
status=
while :; do
  kill -0 "$daemon_pid" 2>/dev/null || die "borderscand died during the scan (log: $tmp/daemon.log)"
  curl -sS -f -o "$tmp/status.json" "$url/api/v1/scans/$id" || die "GET /api/v1/scans/$id failed"
  status=$(jq -r .status "$tmp/status.json")
  [[ "$status" == "done" || "$status" == failed ]] && break
  if ((SECONDS - last_print >= 15)); then
    last_print=$SECONDS
    jq -r '"   \(.status): \(.progress.files_done) of \(.progress.files_found) files"' "$tmp/status.json"
  fi
  sleep 0.5
done
mark stored
scan_outcome=$(jq -r '"\(.status), verdict \(.verdict), \(.progress.files_done) files" + (if .error then ", error: \(.error)" else "" end)' "$tmp/status.json")
echo "   $scan_outcome (daemon RSS $(rss_mib) MiB)"
failures=()
if [[ "$status" == "done" ]]; then
  sleep 5
  mark downloads
  echo "== $clients concurrent downloads of GET /api/v1/scans/$id/report${limit_rate:+, each at most $limit_rate/s} (daemon RSS $(rss_mib) MiB)"
  python3 "$helper" download --url "$url/api/v1/scans/$id/report" --count "$clients" --dir "$tmp/downloads" \
    --out "$tmp/downloads.json" --cap-file "$tmp/rss-cap-hit" ${limit_rate:+--limit-rate "$limit_rate"}
  mark after
  sleep 5
  mark after5
  echo "   5 s after: daemon RSS $(rss_mib) MiB"
  sleep 25
  mark after30
  echo "   30 s after: daemon RSS $(rss_mib) MiB"
  mark paging
  echo "== paging GET /api/v1/reports/$id/files?limit=1000"
  python3 "$helper" page --url "$url" --id "$id" --out "$tmp/paging.json" --limit 1000 ||
    failures+=("paging failed")
  mark checks
  echo "== checking the downloads (SHA-256 of each, report parsed once)"
  python3 "$helper" verify --downloads "$tmp/downloads.json" --out "$tmp/verify.json"
else
  failures+=("scan $status: $(jq -r .error "$tmp/status.json")")
  sleep 5
fi
mark end
sleep 0.3
kill -TERM "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
end=$(utc)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$daemon_pid"
wait "$daemon_pid" || echo "report: borderscand exited with status $?" >&2
daemon_pid=
problems=$(grep -c -E '\] \[(error|critical)\]' "$tmp/daemon.log" || true)
echo "== daemon stopped; $problems error lines in its log"
grep -E '\] \[(error|critical)\]' "$tmp/daemon.log" | head -n 5 || true

if [[ -s "$tmp/verify.json" ]]; then
  jq -e --argjson n "$clients" '.complete == $n' "$tmp/verify.json" >/dev/null ||
    failures+=("only $(jq .complete "$tmp/verify.json") of $clients downloads complete")
  if jq -e '.complete > 0' "$tmp/verify.json" >/dev/null; then
    jq -e '.digests | length == 1' "$tmp/verify.json" >/dev/null ||
      failures+=("the complete downloads differ: $(jq -c .digests "$tmp/verify.json")")
    jq -e '.report_files == .summary_files + .summary_directories and .report_regular == .summary_files' \
      "$tmp/verify.json" >/dev/null ||
      failures+=("the report's entries do not add up: $(jq -c '{report_files, report_regular, summary_files, summary_directories}' "$tmp/verify.json")")
    jq -e --argjson n "$files" '.summary_files == $n' "$tmp/verify.json" >/dev/null ||
      failures+=("the report has $(jq .summary_files "$tmp/verify.json") regular files, the image $files")
    if [[ -s "$tmp/paging.json" ]]; then
      rows=$(jq .rows "$tmp/paging.json")
      jq -e --argjson r "$rows" '.report_files == $r' "$tmp/verify.json" >/dev/null ||
        failures+=("paging gave $rows rows, the report has $(jq .report_files "$tmp/verify.json") entries")
    fi
  fi
elif [[ "$status" == "done" ]]; then
  failures+=("no download could be checked")
fi
[[ -e "$tmp/rss-cap-hit" ]] && failures+=("the daemon passed the RSS cap of $rss_cap_mib MiB: downloads still running were stopped")

# --- table ---------------------------------------------------------------------------------------------
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=
if [[ -n $(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=no -- server scanner cli sandbox CMakeLists.txt 2>/dev/null) ]]; then
  git_dirty=" (with uncommitted changes in server/scanner/cli/sandbox)"
fi
M_START=$start M_END=$end M_CMDLINE=$cmdline M_LOAD_BEFORE=$load_before M_LOAD_AFTER=$load_after \
  M_VERSION=$version M_GIT_REV=$git_rev M_GIT_DIRTY=$git_dirty \
  M_BINARY="built $(date -u -r "$daemon" +%Y-%m-%dT%H:%M:%SZ)" M_IMAGE_DESC=$image_desc \
  M_CONFIG_DESC=$config_desc M_FILES=$files M_CLIENTS=$clients M_INTERVAL=$interval \
  M_IMAGE_BYTES=$image_bytes M_LIMIT_RATE=$limit_rate M_SCAN_OUTCOME=$scan_outcome M_PROBLEMS=$problems \
  python3 - "$tmp/meta.json" "$here" <<'EOF'
import json, os, sys
sys.path.insert(0, sys.argv[2])
from bench_meta import machine
e = os.environ
meta = {k[2:].lower(): v for k, v in e.items() if k.startswith("M_")}
meta.update(files=int(e["M_FILES"]), clients=int(e["M_CLIENTS"]), image_bytes=int(e["M_IMAGE_BYTES"]),
            problems=int(e["M_PROBLEMS"]), **machine())
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1, ensure_ascii=False)
EOF
echo
table_args=(--samples "$tmp/samples.tsv" --phases "$phases" --meta "$tmp/meta.json"
  --downloads "$tmp/downloads.json" --verify "$tmp/verify.json" --paging "$tmp/paging.json")
[[ -n "$markdown_out" ]] && table_args+=(--markdown "$markdown_out")
python3 "$helper" table "${table_args[@]}"
[[ -n "$markdown_out" ]] && echo "report: Markdown written to $markdown_out"
if ((${#failures[@]} > 0)); then
  for f in "${failures[@]}"; do echo "report: FAILED: $f" >&2; done
  exit 1
fi
exit 0
