#!/usr/bin/env bash
# "Seen before?" (issue #14): how fast the report store finds every report
# and station where some content appeared (GET /api/v1/files?sha256=|sha1=|md5=,
# sqlite_report_store::find_by_hash) when it holds a million file rows, and
# what the hash indexes buy. The issue asks for a search "backed by an index,
# fast with a million file rows"; this measures it on a real SQLite store.
#
#   bench/hash-search.sh [--rows N] [--files-per-scan N] [--repetitions N]
#                        [--cache-dir DIR] [--no-cache] [--rebuild]
#                        [--build-dir DIR] [--no-build] [--markdown FILE]
#
# ROWS=N in the environment is the same as --rows N (default 1 000 000, in
# reports of --files-per-scan rows, default 1 000). It configures and builds
# borderscan_store_bench in --build-dir (default build-bench, configured with
# -DBORDERSCAN_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release -G Ninja when it has
# no CMakeCache.txt yet; --no-build uses what is there), then runs it.
#
# The program builds the store once through the store's own API (1 000 done
# scans of 1 000 file rows at the default: unique random hashes, 3 % folders
# without hashes, 1 % one of 100 popular contents such as EICAR or a common
# DLL) and keeps it in --cache-dir (default $XDG_CACHE_HOME/borderscan-bench,
# else ~/.cache/borderscan-bench), with a copy without the hash indexes: about
# 2.4 GB for a million rows. --rebuild builds them again; --no-cache builds in
# a mktemp -d folder under $TMPDIR that is removed at the end. The first run
# takes a few minutes to build (the build time is one of the figures).
#
# Figures, all from one run of the program (Google Benchmark, --repetitions
# rounds, default 5, interleaved at random so that load on a shared machine
# falls on all of them alike; medians): find_by_hash for a random existing
# SHA-256 (seen once), for the most common popular content (first page of
# 50), for a missing SHA-256, for a random existing MD5, and a walk of every
# page of the popular content; the baseline is find_scan(id), a primary-key
# lookup of one scan in the same store, and every query is given as a ratio
# to it. Then the unique and popular queries on the copy without hash indexes,
# as ratios to the indexed query. Informational: build time and size on disk
# per million rows, bytes per table and index (SQLite's dbstat).
set -euo pipefail

args="$*"
rows=${ROWS:-1000000}
files_per_scan=1000
repetitions=5
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache_dir=${XDG_CACHE_HOME:-$HOME/.cache}/borderscan-bench
no_cache=0
rebuild=0
build_dir=$repo/build-bench
no_build=0
markdown=

die() {
  echo "hash-search.sh: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --files-per-scan) files_per_scan=$2; shift 2 ;;
    --repetitions) repetitions=$2; shift 2 ;;
    --cache-dir) cache_dir=$2; shift 2 ;;
    --no-cache) no_cache=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) no_build=1; shift ;;
    --markdown) markdown=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive number"
[[ "$files_per_scan" =~ ^[1-9][0-9]*$ ]] || die "--files-per-scan must be a positive number"
[[ "$repetitions" =~ ^[1-9][0-9]*$ ]] || die "--repetitions must be a positive number"
command -v python3 >/dev/null || die "python3 is missing"

bench=$build_dir/bin/borderscan_store_bench
if ((!no_build)); then
  command -v cmake >/dev/null || die "cmake is missing"
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    echo "== configuring $build_dir" >&2
    cmake -S "$repo" -B "$build_dir" -G Ninja -DBORDERSCAN_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release >&2
  fi
  echo "== building borderscan_store_bench in $build_dir" >&2
  cmake --build "$build_dir" --target borderscan_store_bench >&2
fi
[[ -x "$bench" ]] ||
  die "no $bench: cmake -S . -B build-bench -G Ninja -DBORDERSCAN_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target borderscan_store_bench"

work=$(mktemp -d "${TMPDIR:-/tmp}/borderscan-hash-search.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
if ((no_cache)); then
  cache_dir=$work/store
fi
mkdir -p "$cache_dir"
# The store and its copy without hash indexes: about 1.2 KB per row each.
need_kib=$((rows * 2500 / 1024 + 512 * 1024))
free_kib=$(df -Pk "$cache_dir" | awk 'NR == 2 {print $4}')
((free_kib > need_kib)) || echo "hash-search.sh: warning: $cache_dir has $((free_kib / 1024)) MiB free," \
  "a new store needs about $((need_kib / 1024)) MiB (nothing to do if it is cached)" >&2

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "== $bench, $rows rows, $repetitions rounds, store in $cache_dir" >&2
BORDERSCAN_STORE_BENCH_ROWS=$rows BORDERSCAN_STORE_BENCH_FILES_PER_SCAN=$files_per_scan \
  BORDERSCAN_STORE_BENCH_DIR=$cache_dir BORDERSCAN_STORE_BENCH_REBUILD=$rebuild \
  "$bench" --benchmark_repetitions="$repetitions" --benchmark_enable_random_interleaving=true \
  --benchmark_out="$work/out.json" --benchmark_out_format=json >&2
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$repo" status --porcelain -- server bench/micro 2>/dev/null)" ]]; then
  commit="$commit (+ uncommitted changes under server/ or bench/micro/)"
fi

python3 - "$work/out.json" "$started" "$finished" "$load_start" "$load_end" "$commit" "$args" <<'EOF' | tee "${markdown:-/dev/null}"
import json, os, statistics, sys
path, started, finished, load_start, load_end, commit, args = sys.argv[1:]
with open(path) as f:
    doc = json.load(f)
ctx = doc["context"]
scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
runs, counters = {}, {}
for b in doc["benchmarks"]:
    if b.get("run_type") != "iteration" or b.get("error_occurred"):
        continue
    name = "/".join(p for p in b["run_name"].split("/") if ":" not in p)  # without iterations:, repeats:
    runs.setdefault(name, []).append(b["real_time"] * scale[b["time_unit"]])
    counters[name] = b
med = {n: statistics.median(v) for n, v in runs.items()}

def fmt(s):
    return f"{s * 1e3:,.2f} ms" if s >= 1e-3 else f"{s * 1e6:,.1f} µs"

def ratio_text(r):
    return f"{r:.2f}" if r < 10 else f"{r:,.0f}"

def spread(n):
    v = runs[n]
    return f"{fmt(min(v))} – {fmt(max(v))}" if len(v) > 1 else "one round"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
rows = int(ctx["store_rows"])
million = rows / 1e6
mib = lambda b: float(b) / 1048576
print(f"Measured {started} to {finished} with `bench/hash-search.sh {args}`, commit {commit}. Machine: "
      f"{os.cpu_count()} cores ({cpu}), {mem / 1048576:.1f} GiB RAM; load average {load_start} at the start, "
      f"{load_end} at the end. SQLite {ctx.get('sqlite_version', '?')}.\n")
built = "cached, built earlier in" if ctx["store_cached"] == "true" else "built in this run in"
print(f"Store: {rows:,} file rows in {int(ctx['store_scans']):,} done reports, {mib(ctx['store_bytes']):,.0f} MiB "
      f"({mib(ctx['store_bytes_per_million_rows']):,.0f} MiB per million rows; row JSON "
      f"{float(ctx['store_json_bytes_per_row']):.0f} bytes on average), {built} {float(ctx['store_build_s']):,.0f} s "
      f"({float(ctx['store_build_s_per_million_rows']):,.0f} s per million rows, through the store's API in "
      f"1 000-row transactions as the daemon stores reports). The most common popular content is in "
      f"{int(ctx['store_popular_rows']):,} rows.\n")
objects = {k.split(":", 1)[1]: int(v) for k, v in ctx.items() if k.startswith("store_object_bytes:")}
if objects:
    idx = [n for n in ("report_files_by_sha256", "report_files_by_sha1", "report_files_by_md5") if n in objects]
    parts = ", ".join(f"{n.removeprefix('report_files_by_')} {mib(objects[n]):,.0f} MiB" for n in idx)
    print(f"On disk (dbstat): table report_files {mib(objects.get('report_files', 0)):,.0f} MiB; hash indexes "
          f"{parts} ({mib(sum(objects[n] for n in idx)):,.0f} MiB together, "
          f"{mib(sum(objects[n] for n in idx)) / million:,.0f} MiB per million rows).\n")
print(f"Query plan with the indexes: `{ctx.get('query_plan', '?')}`.\n")

base = med.get("BM_FindScan")
labels = [
    ("BM_FindScan", "`find_scan(id)`: one scan by primary key (**baseline**)"),
    ("BM_FindByHashUnique", "`find_by_hash` sha256, random existing content seen once"),
    ("BM_FindByHashPopular", "`find_by_hash` sha256, popular content, first page of 50"),
    ("BM_FindByHashMissing", "`find_by_hash` sha256, content never seen"),
    ("BM_FindByHashMd5", "`find_by_hash` md5, random existing content seen once"),
    ("BM_FindByHashPopularLastPage", "`find_by_hash` sha256, popular content, last page (cursor)"),
    ("BM_FindByHashPopularAllPages", "popular content, every page following the cursor"),
    ("BM_LastPageSql/0", "the last page's SQL, cursor `scan_seq < ? OR (scan_seq = ? AND idx < ?)` (the store's)"),
    ("BM_LastPageSql/1", "the last page's SQL, cursor `(scan_seq, idx) < (?, ?)` (row value)"),
]
print(f"| query | median | min – max of {max(len(v) for v in runs.values())} rounds | ratio to baseline | items |")
print("|---|---:|---:|---:|---:|")
for name, label in labels:
    if name not in med:
        continue
    c = counters[name]
    if name == "BM_FindByHashPopularAllPages":
        items = f"{int(c['rows']):,} rows in {int(c['pages'])} pages ({fmt(med[name] / c['pages'])} a page)"
    elif name == "BM_FindByHashPopularLastPage":
        items = f"{c['items_per_query']:g} (after {int(c['rows_before']):,} rows)"
    elif name == "BM_FindScan":
        items = "1"
    else:
        items = f"{c['items_per_query']:g}"
    ratio = f"**{ratio_text(med[name] / base)}**" if base else "—"
    print(f"| {label} | {fmt(med[name])} | {spread(name)} | {ratio} | {items} |")
print()
no_index = [("BM_FindByHashUniqueNoIndex", "BM_FindByHashUnique", "sha256 seen once"),
            ("BM_FindByHashPopularNoIndex", "BM_FindByHashPopular", "popular, first page of 50")]
if any(n in med for n, _, _ in no_index):
    print("Without the hash indexes (a copy of the store, `DROP INDEX report_files_by_sha256` and the others):\n")
    print("| query | median, no index | min – max | with the index | no index / index | ratio to baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, indexed, label in no_index:
        if name in med and indexed in med:
            ratio = ratio_text(med[name] / base) if base else "—"
            print(f"| {label} | {fmt(med[name])} | {spread(name)} | {fmt(med[indexed])} | "
                  f"**{ratio_text(med[name] / med[indexed])}** | {ratio} |")
EOF
