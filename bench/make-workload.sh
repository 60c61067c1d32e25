#!/usr/bin/env bash
# Builds Borderscan's benchmark workload: deterministic device images made by real tools, without
# mounting anything and without root.
#
#   bench/make-workload.sh [--small|--large] [--keep-tree] OUTDIR
#
# Writes into OUTDIR (created if missing; existing images are overwritten):
#   fat32.img        FAT32, no partition table (mkfs.vfat, files copied with mtools `mcopy -s`,
#                    some deleted with `mdel`)
#   ext4.img         ext4, no partition table (`mke2fs -d`, the same files; the same ones deleted
#                    with `debugfs -w -R rm`)
#   exfat-empty.img  exFAT, formatted but EMPTY (sparse): Debian 12 has no tool that fills an exFAT
#                    image without mounting it, so it is not a benchmark workload, only a format
#                    check
#   manifest.tsv     every file: path, size, sha256, kind, deleted (0/1), note
#   tree/            the source tree (only with --keep-tree)
#
# Default: ~1 GiB images with ~3 000 files (~870 MB of content). --small: ~96 MiB images with
# ~320 files, the same mix scaled down; --large: ~4 GiB images with ~12 000 files. Content comes from bench/workload_gen.py with fixed seeds;
# see bench/README.md for the mix.
set -euo pipefail

usage() {
  echo "usage: $0 [--small|--large] [--keep-tree] OUTDIR" >&2
  exit 2
}

scale=full
keep_tree=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --small) scale=small; shift ;;
    --large) scale=large; shift ;;
    --keep-tree) keep_tree=1; shift ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[[ $# -eq 1 ]] || usage

exec </dev/null
die() { echo "make-workload: $*" >&2; exit 1; }

for tool in python3 mkfs.vfat mcopy mdel mke2fs debugfs mkfs.exfat tune.exfat truncate fls; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "missing tool: $tool (apt-get install python3 dosfstools mtools e2fsprogs exfatprogs sleuthkit)"
done

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$scale" in
  full) img_size=1024M ;;
  large) img_size=4096M ;;
  *) img_size=96M ;;
esac

# Determinism: fixed clock, zone, locale, umask and tool configuration.
umask 022
export TZ=UTC
export LC_ALL=C.UTF-8                    # mtools converts long names from the locale's charset
export SOURCE_DATE_EPOCH=1672531200      # 2023-01-01T00:00:00Z; mtools uses it for new entries
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
printf 'mtools_skip_check=1\ndefault_codepage=850\n' >"$tmp/mtoolsrc"
export MTOOLSRC="$tmp/mtoolsrc"
export MKE2FS_CONFIG=$here/mke2fs.conf  # Debian 12's ext4 features, pinned

t0=$SECONDS
src=$tmp/tree
manifest=$out/manifest.tsv
echo "make-workload: generating the $scale file tree ..." >&2
python3 "$here/workload_gen.py" "$scale" "$src" "$manifest"

# Deleted paths (column 5 of the manifest), one per line, relative to the root.
awk -F'\t' 'NR > 1 && $5 == 1 { print $1 }' "$manifest" >"$tmp/deleted.txt"

# --- FAT32 ---------------------------------------------------------------------------------
fat=$out/fat32.img
echo "make-workload: building $fat ..." >&2
rm -f "$fat"
truncate -s "$img_size" "$fat"
mkfs.vfat --invariant --mbr=n -F 32 -i 0b5e0001 -n BSBENCH "$fat" >/dev/null
# mcopy -s copies each top-level entry recursively; -m keeps the (seeded) modification times.
mapfile -d '' top < <(cd "$src" && find . -mindepth 1 -maxdepth 1 -print0 | LC_ALL=C sort -z)
fat_args=()
for entry in "${top[@]}"; do fat_args+=("$src/${entry#./}"); done
mcopy -s -m -i "$fat" "${fat_args[@]}" ::/
del_args=()
while IFS= read -r p; do del_args+=("::/$p"); done <"$tmp/deleted.txt"
if [[ ${#del_args[@]} -gt 0 ]]; then mdel -i "$fat" "${del_args[@]}"; fi

# --- ext4 ----------------------------------------------------------------------------------
ext=$out/ext4.img
echo "make-workload: building $ext ..." >&2
rm -f "$ext"
truncate -s "$img_size" "$ext"
mke2fs -q -F -t ext4 -U 0b5e0002-0000-4000-8000-000000000002 -L BSBENCH \
  -E "root_owner=0:0,hash_seed=0b5e0002-0000-4000-8000-000000000002" -d "$src" "$ext"
# mke2fs -d takes atime (reading the tree for mcopy updated it), ctime and owner from the host:
# pin them, then delete.
{
  (cd "$src" && find . -printf '/%P\t%Ts\n' | LC_ALL=C sort) | while IFS=$'\t' read -r p mt; do
    printf 'sif "%s" atime @%s\nsif "%s" atime_extra 0\nsif "%s" ctime @%s\nsif "%s" ctime_extra 0\n' \
      "$p" "$mt" "$p" "$p" "$mt" "$p"
    printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"
  done
  while IFS= read -r p; do printf 'rm "/%s"\n' "$p"; done <"$tmp/deleted.txt"
} >"$tmp/debugfs.cmds"
debugfs -w -f "$tmp/debugfs.cmds" "$ext" >/dev/null 2>"$tmp/debugfs.err" ||
  { cat "$tmp/debugfs.err" >&2; die "debugfs failed on $ext"; }
if grep -v '^debugfs [0-9.]* (' "$tmp/debugfs.err" >&2; then die "debugfs complained on $ext"; fi

# --- exFAT (empty: cannot be populated without mounting on Debian 12) ------------------------
exfat=$out/exfat-empty.img
rm -f "$exfat"
truncate -s "$img_size" "$exfat"
mkfs.exfat -L BSBENCH "$exfat" >/dev/null
tune.exfat -I 0x0b5e0003 "$exfat" >/dev/null # mkfs.exfat takes the serial from the clock

if [[ "$keep_tree" == 1 ]]; then
  rm -rf "$out/tree"
  mv "$src" "$out/tree"
fi

# --- summary, cross-checked with The Sleuth Kit ----------------------------------------------
files=$(awk -F'\t' 'NR > 1' "$manifest" | wc -l)
deleted=$(wc -l <"$tmp/deleted.txt")
bytes=$(awk -F'\t' 'NR > 1 { s += $2 } END { printf "%d", s }' "$manifest")
uniq_bytes=$(awk -F'\t' 'NR > 1 && !seen[$3]++ { s += $2 } END { printf "%d", s }' "$manifest")
echo
echo "workload ($scale) in $out, built in $((SECONDS - t0)) s:"
printf '  files: %d (%d deleted in both images), content %d MB (%d MB distinct)\n' \
  "$files" "$deleted" $((bytes / 1000000)) $((uniq_bytes / 1000000))
echo "  by kind:"
awk -F'\t' 'NR > 1 { n[$4]++; s[$4] += $2 } END { for (k in n) printf "    %-13s %5d files %9.1f MB\n", k, n[k], s[k] / 1e6 }' \
  "$manifest" | LC_ALL=C sort
for img in "$fat" "$ext" "$exfat"; do
  alloc=$(fls -r -p -u "$img" 2>/dev/null | grep -c '^r/r' || true)
  dele=$(fls -r -p -d "$img" 2>/dev/null | grep -c '^r/r' || true)
  printf '  %-16s %6d MB on disk (apparent %d MB)  fls: %d allocated, %d deleted regular files\n' \
    "$(basename "$img")" $(($(du -k "$img" | cut -f1) / 1024)) $(($(stat -c %s "$img") / 1048576)) \
    "$alloc" "$dele"
done
