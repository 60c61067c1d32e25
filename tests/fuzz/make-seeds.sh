#!/usr/bin/env bash
# Regenerates the seed corpora (small inputs built by real tools).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
w="$(mktemp -d)"
trap 'rm -rf "$w"' EXIT
export TZ=UTC SOURCE_DATE_EPOCH=1577836800 MTOOLS_SKIP_CHECK=1
cd "$w"
printf 'hello seed\n' > a.txt
printf '#!/bin/sh\necho hi\n' > run.sh
touch -d @1577836800 a.txt run.sh
zip -q -X seed.zip a.txt run.sh
7z a -bd -bso0 -bsp0 seed.7z a.txt >/dev/null
tar --mtime=@1577836800 --owner=0 --group=0 -cf seed.tar a.txt run.sh
gzip -n -k -9 seed.tar
xz -k a.txt
zip -q -X -P pw enc.zip a.txt
tar --mtime=@1577836800 --owner=0 --group=0 -cf nested.tar seed.zip
obj="$here/corpus/object"
mkdir -p "$obj"
cp seed.zip seed.7z seed.tar.gz a.txt.xz enc.zip nested.tar "$obj/"

img="$here/corpus/image"
mkdir -p "$img"
mkfs.vfat --invariant -C -F 12 -i 12345678 -n SEED fat12.img 64 >/dev/null
mcopy -i fat12.img a.txt ::/a.txt
mkdir -p e2/dir && cp a.txt e2/dir/
mke2fs -q -t ext2 -b 1024 -N 16 -E root_owner=0:0 -U 00000000-0000-4000-8000-000000000001 -d e2 ext2.img 64
genisoimage -quiet -o seed.iso a.txt
head -c 40960 seed.iso > iso-head.img
truncate -s 64K mbr.img
printf 'label: dos\nstart=1, size=100, type=6\n' | sfdisk -q mbr.img >/dev/null
cp fat12.img ext2.img iso-head.img mbr.img "$img/"
echo "seeds written to $here/corpus" >&2
