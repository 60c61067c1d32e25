#!/usr/bin/env bash
# Hash sets at the size of the full NSRL release: a seeded N-entry SHA-256 set
# (default 50 M) as text, imported with the real `borderscand hashset import`
# into a compact .bhs file, then loaded and looked up both ways in the same
# run: the compact file (mapped) against the text file (parsed, the baseline).
#
#   bench/hashset.sh [--entries N] [--tmp-dir DIR] [--bin-dir DIR] [--micro PATH]
#                    [--memory-mib N] [--markdown FILE] [--keep]
#
# Needs borderscand (build/bin, or --bin-dir) and borderscan_micro_bench, which
# is only built with -DBORDERSCAN_BUILD_BENCH=ON (--micro PATH; default: the
# first of build-bench/bin and build/bin that has it), plus python3 and GNU
# time (/usr/bin/time). Everything it writes lives in one mktemp -d folder
# under --tmp-dir (default $TMPDIR, else /tmp), removed at the end unless
# --keep: about 3.3 GB of text and 1.8 GB of .bhs for 50 M entries.
#
# Figures: import wall time and peak RSS (GNU time, the whole process); the
# .bhs size; `hashset verify` time (a full SHA-256 of the file: what the
# rule-set digest would cost per load without the header fingerprint); the
# compact load (mean and best of 10) and the text load + seal; lookup
# latency for 500 000 hits (digests of the set) and 500 000 misses (random),
# on first touch after loading and repeated; the compact set's lookups after
# its pages were dropped from the page cache; one dependent random memory read
# across the mapped file (the machine's floor for any lookup that misses the
# caches: a lookup is about one such read plus the prefix index and a cache
# line or two); each side's peak RSS; and, when
# mkfs.vfat is there, the wall time of a whole `borderscan scan` of an empty
# 1 MiB FAT image without a hash set, with the .bhs and with the text file
# (what a fenced worker pays per scan to get its rules ready).
set -euo pipefail

args="$*"
entries=50000000
tmp_root=${TMPDIR:-/tmp}
bin_dir=
micro=
memory_mib=64
markdown=
keep=0
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

die() {
  echo "hashset.sh: $*" >&2
  exit 1
}

while (($#)); do
  case $1 in
    --entries) entries=$2; shift 2 ;;
    --tmp-dir) tmp_root=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --micro) micro=$2; shift 2 ;;
    --memory-mib) memory_mib=$2; shift 2 ;;
    --markdown) markdown=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

bin_dir=${bin_dir:-${BORDERSCAN_BIN_DIR:-$repo/build/bin}}
daemon=$bin_dir/borderscand
[[ -x "$daemon" ]] || die "no borderscand in $bin_dir (cmake --build build --target borderscand, or --bin-dir)"
if [[ -z "$micro" ]]; then
  for candidate in "$repo/build-bench/bin/borderscan_micro_bench" "$repo/build/bin/borderscan_micro_bench"; do
    [[ -x "$candidate" ]] && micro=$candidate && break
  done
fi
[[ -n "$micro" && -x "$micro" ]] ||
  die "no borderscan_micro_bench: cmake -S . -B build-bench -DBORDERSCAN_BUILD_BENCH=ON && cmake --build build-bench --target borderscan_micro_bench (or --micro PATH)"
[[ -x /usr/bin/time ]] || die "GNU time is missing (apt-get install time)"
command -v python3 >/dev/null || die "python3 is missing"

need_kib=$((entries * 105 / 1024 + 1024 * 1024))
free_kib=$(df -Pk "$tmp_root" | awk 'NR == 2 {print $4}')
((free_kib > need_kib)) || die "$tmp_root has $((free_kib / 1024)) MiB free, needs about $((need_kib / 1024)) MiB"

work=$(mktemp -d "$tmp_root/borderscan-hashset-bench.XXXXXX")
cleanup() {
  if ((keep)); then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "== generating $entries SHA-256 lines (seeded) in $work/set.txt" >&2
python3 - "$entries" "$work/set.txt" <<'EOF'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
chunk = 100_000
with open(path, "w") as out:
    left = n
    while left:
        k = min(chunk, left)
        h = rng.randbytes(32 * k).hex()
        out.write("\n".join(h[i:i + 64] for i in range(0, len(h), 64)))
        out.write("\n")
        left -= k
EOF
text_bytes=$(stat -c %s "$work/set.txt")

echo "== importing with borderscand hashset import (sort buffer $memory_mib MiB)" >&2
/usr/bin/time -f '%e %M' -o "$work/import.time" "$daemon" hashset import --format text --kind known-bad \
  --name bench --memory-mib "$memory_mib" --data-dir "$work/data" "$work/set.txt" | tee "$work/import.out" >&2
read -r import_s import_kib <"$work/import.time"
bhs=$work/data/hashsets/bench.bhs
bhs_bytes=$(stat -c %s "$bhs")

echo "== hashset verify (full SHA-256 of the .bhs)" >&2
/usr/bin/time -f '%e %M' -o "$work/verify.time" "$daemon" hashset verify --data-dir "$work/data" >&2
read -r verify_s _ <"$work/verify.time"

cat "$bhs" "$work/set.txt" >/dev/null # both in the page cache, as on a daemon that has run a while
scan_none=- scan_bhs=- scan_text=-
if command -v mkfs.vfat >/dev/null && [[ -x "$bin_dir/borderscan" ]]; then
  echo "== borderscan scan of an empty FAT image: no set, the .bhs, the text file" >&2
  mkfs.vfat -C "$work/empty.img" 1024 >/dev/null
  scan_time() { # best of 3 wall seconds
    local best=999999 s
    for _ in 1 2 3; do
      /usr/bin/time -f '%e' -o "$work/scan.time" "$bin_dir/borderscan" scan -q -o /dev/null "$@" "$work/empty.img" ||
        true
      s=$(cat "$work/scan.time")
      best=$(python3 -c "print(min($best, $s))")
    done
    echo "$best"
  }
  scan_none=$(scan_time)
  scan_bhs=$(scan_time --hashset "$bhs:known-bad")
  scan_text=$(scan_time --hashset "$work/set.txt:known-bad")
fi
export BORDERSCAN_BENCH_HASHSET=$bhs BORDERSCAN_BENCH_HASHSET_TEXT=$work/set.txt
for side in Compact Text; do
  echo "== BM_HashSet$side" >&2
  /usr/bin/time -f '%e %M' -o "$work/$side.time" "$micro" --benchmark_filter="^BM_HashSet$side/" \
    --benchmark_out="$work/$side.json" --benchmark_out_format=json >&2
done
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)

python3 - "$work" "$entries" "$text_bytes" "$bhs_bytes" "$import_s" "$import_kib" "$verify_s" "$memory_mib" \
  "$started" "$finished" "$scan_none" "$scan_bhs" "$scan_text" "$args" <<'EOF' | tee "${markdown:-/dev/null}"
import json, os, platform, sys
(work, entries, text_bytes, bhs_bytes, import_s, import_kib, verify_s, memory_mib, started, finished,
 scan_none, scan_bhs, scan_text, args) = sys.argv[1:]
def bench(side):
    with open(os.path.join(work, side + ".json")) as f:
        b = json.load(f)["benchmarks"][0]
    with open(os.path.join(work, side + ".time")) as f:
        wall, kib = f.read().split()
    return b, int(kib)
c, c_kib = bench("Compact")
t, t_kib = bench("Text")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
mib = lambda b: int(b) / 1048576
print(f"Measured {started} to {finished} with `bench/hashset.sh {args}`. Machine: {os.cpu_count()} cores ({cpu}), "
      f"{mem / 1048576:.1f} GiB RAM, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end.\n")
print(f"Set: {int(entries):,} random SHA-256 digests; text {mib(text_bytes):,.0f} MiB, "
      f".bhs {mib(bhs_bytes):,.0f} MiB ({int(bhs_bytes) / int(entries):.1f} bytes per entry).\n")
print("| | compact (.bhs, mapped) | text (parsed, baseline) |")
print("|---|---:|---:|")
print(f"| import (`borderscand hashset import`, sort buffer {memory_mib} MiB) | {float(import_s):.1f} s, peak RSS {int(import_kib) / 1024:.0f} MiB | — |")
print(f"| load | **{c['load_us_mean'] / 1000:.2f} ms** (best {c['load_us_best'] / 1000:.2f} ms, mean of 10) | {t['load_s']:.2f} s (load + seal) |")
print(f"| memory after the lookups: private (RssAnon) / mapped file pages (RssFile, page cache) | "
      f"{c['rss_anon_MiB']:.0f} / {c['rss_file_MiB']:.0f} MiB | {t['rss_anon_MiB']:.0f} / {t['rss_file_MiB']:.0f} MiB |")
print(f"| peak RSS of the measuring process (GNU time; mapped pages included) | {c_kib / 1024:.0f} MiB | {t_kib / 1024:.0f} MiB |")
for key, label in (("hit_ns_first", "lookup, hit, first touch after load"),
                   ("miss_ns_first", "lookup, miss, first touch after load"),
                   ("hit_ns_repeat", "lookup, hit, repeated"),
                   ("miss_ns_repeat", "lookup, miss, repeated")):
    print(f"| {label} | {c[key]:.0f} ns | {t[key]:.0f} ns |")
print(f"| lookup, hit, file dropped from the page cache | {c['hit_us_evicted']:.0f} µs | — |")
print(f"| one dependent random read across the mapped file (this machine's memory floor) | {c['memory_dependent_ns']:.0f} ns | |")
print(f"| hit rate (hits / lookups, expected 0.5) | {c['hit_rate']:.3f} | {t['hit_rate']:.3f} |")
print(f"| full SHA-256 of the .bhs (`hashset verify`) | {float(verify_s):.1f} s | — |")
if scan_none != "-":
    print(f"| `borderscan scan` of an empty 1 MiB FAT image, best of 3 (no set: {float(scan_none):.2f} s) | "
          f"{float(scan_bhs):.2f} s | {float(scan_text):.2f} s |")
EOF
