#!/usr/bin/env bash
# Upload benchmark of borderscand (issue #4): a big image streamed over loopback against copying the
# same file with `cat` onto the spool disk, the daemon's peak RSS during the upload, and N small
# uploads at once that must all be accepted and scanned. Starts the real daemon on a free port with a
# temporary configuration and data folder; builds nothing.
#
#   bench/upload.sh [--size-gib N] [--runs N] [--concurrent N] [--markdown FILE] [--keep]
#                   [--bin-dir DIR] [--tmp-dir DIR] [--fill random|zero] [--no-digest-variant]
#
#   --size-gib N         size of the big image in GiB (default 4; decimals allowed, e.g. 0.5)
#   --runs N             rounds of the big upload (default 3; 0 skips it). Odd rounds run the
#                        contenders in one order, even rounds in the reverse order
#   --concurrent N       small uploads started at once (default 32; 0 skips them)
#   --markdown FILE      also write the Markdown result block (for bench/RESULTS.md) to FILE
#   --keep               keep the temporary folder (images, daemon log, raw JSON) and print its path
#   --bin-dir DIR        where borderscand and borderscan are (default: $BORDERSCAN_BIN_DIR, else
#                        build/bin of this checkout)
#   --tmp-dir DIR        parent of the temporary folder (default: $TMPDIR, else /tmp). The spool is
#                        inside it, so this chooses the disk that is measured
#   --fill random|zero   content of the big image's free space (default random: seeded AES-CTR
#                        stream, so nothing below can shortcut zeros; zero: a sparse file)
#   --no-digest-variant  skip the upload with an X-Image-SHA256 header
#
# Contenders of one round (the image is in the page cache; `sync` runs before each):
#   cat          cat IMAGE > SPOOL/bench-cat-R.bin; sync -d SPOOL/bench-cat-R.bin   (then removed)
#                sync -d = fdatasync(2) of that file: the daemon fdatasyncs each image before its 202
#   upload       curl -sS -T IMAGE -X POST -H 'Content-Type: application/octet-stream' URL/api/v1/scans
#   upload+sha   the same with -H 'X-Image-SHA256: <sha256 of IMAGE>' (verified by the daemon)
# After each upload the scan is awaited (GET /api/v1/scans/{id}); the daemon then deletes the spool
# file (keep_images = false), so the disk does not fill up. Ratio = cat time / upload time.
# The big image is a FAT file system (mkfs.vfat) padded to size with an EICAR file, so its scan is
# quick and must end `flagged`; the small one is an 8 MiB FAT image with the same files.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
cmdline="bench/upload.sh $*"
size_gib=4
runs=3
concurrent=32
markdown_out=
keep=0
bin_dir=${BORDERSCAN_BIN_DIR:-$repo/build/bin}
tmp_parent=${TMPDIR:-/tmp}
fill=random
digest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size-gib) size_gib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --concurrent) concurrent=$2; shift 2 ;;
    --markdown) markdown_out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --tmp-dir) tmp_parent=$2; shift 2 ;;
    --fill) fill=$2; shift 2 ;;
    --no-digest-variant) digest_args=(--no-digest-variant); shift ;;
    -h|--help) usage ;;
    *) echo "upload: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "upload: $*" >&2; exit 1; }
exec </dev/null

[[ "$size_gib" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--size-gib needs a number"
[[ "$runs" =~ ^[0-9]+$ ]] || die "--runs needs a number"
[[ "$concurrent" =~ ^[0-9]+$ ]] || die "--concurrent needs a number"
[[ "$fill" == random || "$fill" == zero ]] || die "--fill is random or zero"
# Whole MiB, at least 64 MiB (awk only computes MiB: mawk's %d stops at 2^31 - 1).
size_mib=$(awk -v g="$size_gib" 'BEGIN { m = int(g * 1024 + 0.5); if (m < 64) m = 64; printf "%d", m }')
size=$((size_mib << 20))
small_size=$((8 << 20))

for tool in curl mkfs.vfat mcopy openssl python3 sync df findmnt truncate awk; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "missing tool: $tool (apt-get install curl dosfstools mtools openssl python3 coreutils util-linux)"
done
sync --help | grep -q -- '--data' || die "sync has no --data (coreutils >= 8.24 needed for fdatasync of one file)"
[[ -d "$bin_dir" ]] || die "no folder $bin_dir (build first, or --bin-dir DIR / BORDERSCAN_BIN_DIR)"
bin_dir=$(cd "$bin_dir" && pwd)
daemon=$bin_dir/borderscand
[[ -x "$daemon" ]] || die "no borderscand in $bin_dir (build it, or --bin-dir DIR / BORDERSCAN_BIN_DIR)"
[[ -x "$bin_dir/borderscan" ]] || die "no borderscan (the scan worker) in $bin_dir"
helper=$repo/bench/upload_report.py

mkdir -p "$tmp_parent"
tmp=$(mktemp -d "$tmp_parent/borderscan-upload.XXXXXX")
[[ "$tmp" != *[\"\\]* ]] || die "the temporary path must not contain quotes or backslashes: $tmp"
daemon_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_daemon
  if [[ "$keep" == 1 ]]; then
    echo "upload: kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
data=$tmp/data
spool=$data/spool
mkdir -p "$spool" "$tmp/work"

# --- the disk -----------------------------------------------------------------------------------
echo "== disk (temporary folder, spool and cat copies all on it): $tmp"
df -h "$tmp"
read -r disk_source disk_fstype disk_opts < <(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$tmp")
disk_target=$(findmnt -no TARGET -T "$tmp")
avail=$(df -B1 --output=avail "$tmp" | tail -n 1 | tr -d ' ')
avail_h=$(df -h --output=avail "$tmp" | tail -n 1 | tr -d ' ')
image_alloc=$size
[[ "$fill" == zero ]] && image_alloc=$((64 << 20)) # sparse: only the FAT structures are written
# The image, one copy at a time (the cat copy is removed before the upload starts, the spool
# file when its scan ends), the small images and their spool files, and 1 GiB to spare.
need=$((image_alloc + size + (concurrent + 1) * small_size + (1 << 30)))
if ((avail < need)); then
  die "not enough room on $disk_source ($disk_target): $((avail >> 20)) MiB free, $((need >> 20)) MiB needed" \
    "(image $((image_alloc >> 20)) MiB + one copy $((size >> 20)) MiB + small images + 1 GiB spare);" \
    "use --size-gib smaller or --tmp-dir on another disk"
fi
echo "   $disk_source ($disk_fstype, $disk_opts), mounted on $disk_target; $avail_h free, $((need >> 20)) MiB needed"

# --- images ---------------------------------------------------------------------------------------
# The EICAR test string, stored ROT13-encoded so that this script itself is not flagged.
write_eicar() {
  # shellcheck disable=SC2016 # literal $ signs
  printf '%s' 'K5B!C%@NC[4\CMK54(C^)7PP)7}$RVPNE-FGNAQNEQ-NAGVIVEHF-GRFG-SVYR!$U+U*' |
    tr 'A-Za-z' 'N-ZA-Mn-za-m' >"$1"
}
export MTOOLSRC=$tmp/mtoolsrc
printf 'mtools_skip_check=1\n' >"$MTOOLSRC"
mkdir -p "$tmp/files"
write_eicar "$tmp/files/eicar.com"
printf 'Borderscan upload benchmark.\n' >"$tmp/files/readme.txt"
head -c 262144 /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:borderscan-small \
  -out "$tmp/files/blob.bin" 2>/dev/null

fill_fat() { # IMAGE: FAT (mkfs.vfat picks FAT12/16/32 by size) with the three files
  mkfs.vfat -n BENCH -i 0b5e55ed "$1" >/dev/null
  mcopy -i "$1" "$tmp/files/eicar.com" "$tmp/files/readme.txt" "$tmp/files/blob.bin" ::/
}

image=$tmp/big.img
small=$tmp/small.img
start_build=$(date +%s.%N)
if ((runs > 0)); then
  if [[ "$fill" == random ]]; then
    # Seeded pseudo-random bytes (AES-128-CTR of zeros) fill what mkfs leaves alone (free clusters).
    head -c "$size" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:borderscan-upload \
      -out "$image" 2>/dev/null
    image_desc="FAT32 file system (mkfs.vfat) holding EICAR, a text file and 256 KiB of random bytes; free space filled with seeded pseudo-random bytes (AES-CTR), $((size >> 20)) MiB"
  else
    truncate -s "$size" "$image"
    image_desc="FAT32 file system (mkfs.vfat) holding EICAR, a text file and 256 KiB of random bytes; sparse file (zeros), $((size >> 20)) MiB"
  fi
  [[ $(stat -c %s "$image") == "$size" ]] || die "the image is $(stat -c %s "$image") bytes, not $size"
  fill_fat "$image"
fi
truncate -s "$small_size" "$small"
fill_fat "$small"
small_desc="FAT16 (mkfs.vfat) with EICAR, a text file and 256 KiB of random bytes"
end_build=$(date +%s.%N)
echo "== images built in $(awk -v a="$start_build" -v b="$end_build" 'BEGIN { printf "%.1f", b - a }') s"
if ((runs > 0)); then
  image_sha256=$(openssl dgst -sha256 -r "$image" | cut -d' ' -f1)
  echo "   $image: $size bytes ($(du -h "$image" | cut -f1) allocated), sha256 $image_sha256"
fi
echo "   $small: $small_size bytes"

# --- the daemon -----------------------------------------------------------------------------------
cfg=$tmp/borderscand.toml
max_image=$((size + (1 << 30)))
# Retention keys are newer than the daemon's first release: set them only where the binary knows them
# (an unknown key refuses start-up). 0 = a failed or flagged scan's image is deleted at once too.
effective=$("$daemon" --print-config 2>/dev/null) || die "$daemon --print-config failed"
retention=
for key in keep_flagged_days keep_failed_hours; do
  if grep -q "^$key = " <<<"$effective"; then retention+="$key = 0"$'\n'; fi
done
cat >"$cfg" <<EOF
# bench/upload.sh: the defaults of config/borderscand.toml except for these keys.
[http]
listen = "127.0.0.1:0"
io_threads = 2
max_connections = 256
read_timeout_seconds = 60

[storage]
data_dir = "$data"
max_image_bytes = $max_image
min_free_spool_bytes = 268435456
keep_images = false
$retention

[jobs]
workers = 0
queue_capacity = 64
shutdown_grace_seconds = 5

[rules]
paths = ["$repo/rules"]

[log]
level = "info"
EOF
version=$("$daemon" --version 2>&1 | head -n 1)
start_daemon "$daemon" "$cfg" "$tmp"
echo "== borderscand ($version) pid $daemon_pid ready on $url; config $cfg"

# --- measurements ----------------------------------------------------------------------------------
utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
start=$(utc)
load_before=$(load)
report_args=()
if ((runs > 0)); then
  echo "== $runs rounds: cat + fdatasync vs upload of $((size >> 20)) MiB"
  python3 "$helper" rounds --url "$url" --pid "$daemon_pid" --image "$image" --spool "$spool" \
    --work "$tmp/work" --out "$tmp/rounds.json" --runs "$runs" --sha256 "$image_sha256" \
    --expect-verdict flagged "${digest_args[@]}"
  report_args+=(--rounds "$tmp/rounds.json")
fi
if ((concurrent > 0)); then
  echo "== $concurrent uploads of $((small_size >> 20)) MiB at once"
  python3 "$helper" concurrent --url "$url" --pid "$daemon_pid" --image "$small" --spool "$spool" \
    --work "$tmp/work" --out "$tmp/concurrent.json" --count "$concurrent" --expect-verdict flagged
  report_args+=(--concurrent "$tmp/concurrent.json")
fi
end=$(utc)
load_after=$(load)
kill -TERM "$daemon_pid"
wait "$daemon_pid" || echo "upload: borderscand exited with status $?" >&2
daemon_pid=
problems=$(grep -c -E '\] \[(error|critical)\]' "$tmp/daemon.log" || true)
echo "== daemon stopped; $problems error lines in its log"
grep -E '\] \[(error|critical)\]' "$tmp/daemon.log" | head -n 5 || true

# --- report -----------------------------------------------------------------------------------------
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=
if [[ -n $(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=no -- server scanner cli sandbox CMakeLists.txt 2>/dev/null) ]]; then
  git_dirty=" (with uncommitted changes in server/scanner/cli/sandbox)"
fi
META_START=$start META_END=$end META_CMDLINE=$cmdline META_LOAD_BEFORE=$load_before \
  META_LOAD_AFTER=$load_after META_DISK="$disk_source on $disk_target" META_FSTYPE=$disk_fstype \
  META_MOUNT_OPTS=$disk_opts META_AVAIL=$avail_h META_VERSION=$version META_GIT_REV=$git_rev \
  META_GIT_DIRTY=$git_dirty META_BINARY="$daemon, built $(date -u -r "$daemon" +%Y-%m-%dT%H:%M:%SZ)" META_CURL=$(curl --version | head -n 1 | cut -d' ' -f1-2) \
  META_IMAGE_DESC=${image_desc:-} META_SMALL_DESC=$small_desc META_WORKERS=$(nproc) META_IO_THREADS=2 \
  python3 - "$tmp/meta.json" "$repo/bench" <<'EOF'
import json, os, platform, sys
sys.path.insert(0, sys.argv[2])
from bench_meta import machine
e = os.environ
def sysctl(name):
    with open("/proc/sys/vm/" + name) as f:
        return f.read().strip()
meta = {
    "start": e["META_START"], "end": e["META_END"], "cmdline": e["META_CMDLINE"],
    "load_before": e["META_LOAD_BEFORE"], "load_after": e["META_LOAD_AFTER"],
    "disk": e["META_DISK"], "fstype": e["META_FSTYPE"], "mount_opts": e["META_MOUNT_OPTS"],
    "avail_before": e["META_AVAIL"], "version": e["META_VERSION"], "git_rev": e["META_GIT_REV"],
    "git_dirty": e["META_GIT_DIRTY"], "binary": e["META_BINARY"], "curl": e["META_CURL"], "kernel": platform.release(),
    "dirty_ratio": sysctl("dirty_ratio"), "dirty_background_ratio": sysctl("dirty_background_ratio"),
    "image_desc": e["META_IMAGE_DESC"], "small_desc": e["META_SMALL_DESC"], "workers": e["META_WORKERS"],
    "io_threads": e["META_IO_THREADS"], **machine(),
}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
EOF
echo
markdown_args=()
[[ -n "$markdown_out" ]] && markdown_args=(--markdown "$markdown_out")
python3 "$helper" report --meta "$tmp/meta.json" "${report_args[@]}" "${markdown_args[@]}"
[[ -n "$markdown_out" ]] && echo "upload: Markdown block written to $markdown_out"
exit 0
