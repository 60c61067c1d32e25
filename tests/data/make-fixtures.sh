#!/bin/bash
# Builds Borderscan's small disk-image fixtures with real tools: no root, no mount.
#
#   tests/data/make-fixtures.sh OUTDIR
#
# Writes into OUTDIR (created if missing, existing fixtures overwritten):
#   gpt-two-volumes.img   GPT: p1 FAT16, p2 ext4 (non-ASCII names, EICAR, ELF as .jpg, deleted files)
#   gpt-two-volumes.E01   the same disk as EWF (EnCase 6, deflate)
#   split/gpt-two-volumes.img.001 ...  the same disk as split raw (3 MiB segments)
#   fat-simple.img        FAT12, no partition table
#   fat-clean.img         FAT12, no partition table, nothing any rule flags (a clean device)
#   ext4-simple.img       ext4, no partition table
#   exfat-simple.img      exFAT, formatted but empty (nothing can fill it without mounting)
#   iso-simple.iso        ISO 9660 + Rock Ridge + Joliet
#   mbr-ext.img           MBR: primary FAT12, extended with a logical ext2, primary with no file system
# Then it checks every image with The Sleuth Kit (mmls, fsstat, fls, icat) and fails loudly if a
# tool version builds something libtsk does not list as expected. tests/data/README.md documents
# what each image holds.
set -eu
set -o pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

exec </dev/null # nothing may prompt: CI has no terminal

die() {
  echo "make-fixtures: $*" >&2
  exit 1
}

for tool in sfdisk mkfs.vfat mmd mcopy mdel mke2fs debugfs mkfs.exfat tune.exfat genisoimage \
  ewfacquirestream ewfverify mmls fsstat fls icat img_stat sha256sum split dd truncate md5sum; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install dosfstools mtools" \
    "e2fsprogs exfatprogs fdisk genisoimage ewf-tools sleuthkit)"
done

mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Determinism: fixed clock, zone, locale, umask and tool configuration, whatever the caller's.
umask 022
export TZ=UTC
export LC_ALL=C.UTF-8                    # mtools converts long names from the locale's charset
export SOURCE_DATE_EPOCH=1577836800      # 2020-01-01T00:00:00Z; mtools uses it for new entries
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
stamp='2020-01-02 03:04:06'              # every source file's atime/mtime (even: FAT keeps 2 s)
stamp_e2=20200102030406                  # the same, in debugfs's format

printf 'mtools_skip_check=1\ndefault_codepage=850\n' >"$tmp/mtoolsrc"
export MTOOLSRC="$tmp/mtoolsrc"
# Debian 12's ext4 feature set, pinned so that another host's /etc/mke2fs.conf changes nothing.
cat >"$tmp/mke2fs.conf" <<'EOF'
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	blocksize = 1024
	inode_size = 256
	inode_ratio = 4096
[fs_types]
	small = {
		blocksize = 1024
		inode_ratio = 4096
	}
	floppy = {
		blocksize = 1024
		inode_ratio = 8192
	}
	ext2 = {
		features = ^has_journal
	}
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
EOF
export MKE2FS_CONFIG="$tmp/mke2fs.conf"

# ---------------------------------------------------------------------------------------------
# Content

# The EICAR test string, stored ROT13-encoded so that this script itself is not flagged.
write_eicar() {
  # shellcheck disable=SC2016 # literal $ signs
  printf '%s' 'K5B!C%@NC[4\CMK54(C^)7PP)7}$RVPNE-FGNAQNEQ-NAGVIVEHF-GRFG-SVYR!$U+U*' |
    tr 'A-Za-z' 'N-ZA-Mn-za-m' >"$1"
}
eicar_sha256=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f

# A 129-byte static x86-64 ELF executable that calls exit(0): the same bytes on every host,
# unlike /bin/true. libmagic says "ELF 64-bit LSB executable, x86-64 ... statically linked".
write_elf() {
  {
    printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000' # ELFCLASS64, LSB, SysV
    printf '\002\000\076\000\001\000\000\000'                         # ET_EXEC, EM_X86_64, v1
    printf '\170\000\100\000\000\000\000\000'                         # e_entry 0x400078
    printf '\100\000\000\000\000\000\000\000'                         # e_phoff 64
    printf '\000\000\000\000\000\000\000\000'                         # e_shoff 0
    printf '\000\000\000\000\100\000\070\000\001\000\000\000\000\000\000\000' # ehsize, 1 phdr
    printf '\001\000\000\000\005\000\000\000'                         # PT_LOAD, R+X
    printf '\000\000\000\000\000\000\000\000'                         # p_offset 0
    printf '\000\000\100\000\000\000\000\000\000\000\100\000\000\000\000\000' # vaddr, paddr
    printf '\201\000\000\000\000\000\000\000\201\000\000\000\000\000\000\000' # filesz, memsz 129
    printf '\000\020\000\000\000\000\000\000'                         # p_align 0x1000
    printf '\270\074\000\000\000\061\377\017\005'                     # mov eax,60; xor edi,edi; syscall
  } >"$1"
}
elf_sha256=87858b6b4d11ebf4caff9c548fb26bd9da6dea051cc22b61006afb180c2793a3

write_deleted() { printf 'this file was deleted\n' >"$1"; }
deleted_sha256=30a92ad805201268c3bd2b04f9da1998d208314be72a8e7145e7f4ad145417fa

# Non-ASCII names as explicit UTF-8 (NFC) bytes, independent of how this file is edited.
name_reunion=$(printf 'R\303\251union ann\303\251e.txt')                                 # Réunion année.txt
name_privet=$(printf '\320\237\321\200\320\270\320\262\320\265\321\202 \320\274\320\270\321\200.txt') # Привет мир.txt
name_unicode=$(printf '\303\274n\303\257c\303\266d\303\251.txt')                         # ünïcödé.txt
name_cafe=$(printf 'caf\303\251.txt')                                                   # café.txt

# Sets every path under a source tree to the fixed time.
stamp_tree() {
  find "$1" -exec touch -h -d "$stamp" {} +
}

# ---------------------------------------------------------------------------------------------
# Builders

# new_fat FILE SIZE FATBITS VOLID LABEL
new_fat() {
  rm -f "$1"
  truncate -s "$2" "$1"
  mkfs.vfat --invariant --mbr=n -F "$3" -s 1 -i "$4" -n "$5" "$1" >/dev/null
}

# fat_put IMAGE SRC DEST: copies one file, keeping SRC's (fixed) times.
fat_put() {
  mcopy -m -i "$1" "$2" "::$3"
}

# new_ext FILE SIZE TYPE UUID LABEL SRCDIR: mke2fs -d, then pins what -d takes from the host
# (ctime and owner of every inode) with debugfs.
new_ext() {
  local img=$1 size=$2 type=$3 uuid=$4 label=$5 src=$6 path cmds=$tmp/debugfs.cmds
  rm -f "$img"
  truncate -s "$size" "$img"
  mke2fs -q -F -t "$type" -U "$uuid" -L "$label" \
    -E "root_owner=0:0,hash_seed=$uuid" -d "$src" "$img"
  : >"$cmds"
  (cd "$src" && find . -print | LC_ALL=C sort) | while IFS= read -r path; do
    path=${path#.}
    [ -n "$path" ] || path=/
    printf 'sif "%s" ctime %s\nsif "%s" ctime_extra 0\nsif "%s" uid 0\nsif "%s" gid 0\n' \
      "$path" "$stamp_e2" "$path" "$path" "$path"
  done >>"$cmds"
  debugfs -w -f "$cmds" "$img" >/dev/null 2>"$tmp/debugfs.err" || {
    cat "$tmp/debugfs.err" >&2
    die "debugfs failed on $img"
  }
  if grep -v '^debugfs [0-9.]* (' "$tmp/debugfs.err" >&2; then die "debugfs complained on $img"; fi
}

# ext_rm IMAGE PATH: unlinks PATH and frees its inode and blocks, as a deletion would.
ext_rm() {
  debugfs -w -R "rm \"$2\"" "$1" >/dev/null 2>"$tmp/debugfs.err"
  if grep -v '^debugfs [0-9.]* (' "$tmp/debugfs.err" >&2; then die "debugfs rm $2 failed on $1"; fi
}

# put_at DISK PART START_SECTOR
put_at() {
  dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc status=none
}

# --- gpt-two-volumes.img: 9 MiB GPT, p1 FAT16 at 2048 (3 MiB), p2 ext4 at 8192 (4 MiB) ------
gpt=$out/gpt-two-volumes.img
gpt_p1=2048
gpt_p2=8192
build_gpt() {
  local fat=$tmp/gpt-p1.fat ext=$tmp/gpt-p2.ext4 src=$tmp/gpt-src
  rm -rf "$src"
  mkdir -p "$src/fat/docs" "$src/fat/photos" "$src/ext/home/user" "$src/ext/bin"

  printf 'bonjour\n' >"$src/fat/docs/$name_reunion"
  printf 'privet\n' >"$src/fat/docs/$name_privet"
  write_eicar "$src/fat/eicar.com"
  write_elf "$src/fat/photos/holiday.jpg"
  write_deleted "$src/fat/deleted-secret.txt"
  stamp_tree "$src/fat"
  new_fat "$fat" 3M 16 1a2b3c4d BSGPTFAT
  mmd -i "$fat" ::/docs ::/photos
  fat_put "$fat" "$src/fat/docs/$name_reunion" "/docs/$name_reunion"
  fat_put "$fat" "$src/fat/docs/$name_privet" "/docs/$name_privet"
  fat_put "$fat" "$src/fat/eicar.com" /eicar.com
  fat_put "$fat" "$src/fat/photos/holiday.jpg" /photos/holiday.jpg
  fat_put "$fat" "$src/fat/deleted-secret.txt" /deleted-secret.txt
  mdel -i "$fat" ::/deleted-secret.txt

  printf 'hello from ext4\n' >"$src/ext/home/user/notes.txt"
  printf 'unicode name\n' >"$src/ext/home/user/$name_unicode"
  ln -s notes.txt "$src/ext/home/user/link"
  write_elf "$src/ext/bin/tool.jpg"
  write_deleted "$src/ext/home/user/gone.txt"
  stamp_tree "$src/ext"
  new_ext "$ext" 4M ext4 6f1d2c3b-4a59-4e6d-8b7c-0123456789ab BSGPTEXT4 "$src/ext"
  ext_rm "$ext" /home/user/gone.txt

  rm -f "$gpt"
  truncate -s 9M "$gpt"
  sfdisk --quiet --no-reread --no-tell-kernel "$gpt" <<EOF
label: gpt
label-id: 5A1E5C4B-0000-4000-8000-000000000001
unit: sectors
first-lba: 34

start=$gpt_p1, size=6144, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=5A1E5C4B-0001-4000-8000-000000000001, name="fat16"
start=$gpt_p2, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5A1E5C4B-0002-4000-8000-000000000002, name="ext4"
EOF
  put_at "$gpt" "$fat" "$gpt_p1"
  put_at "$gpt" "$ext" "$gpt_p2"
}

# --- fat-simple.img: 2 MiB FAT12, no partition table -------------------------------------
fat_simple=$out/fat-simple.img
build_fat_simple() {
  local src=$tmp/fat-simple-src
  rm -rf "$src"
  mkdir -p "$src/subdir"
  printf 'Borderscan FAT12 fixture\n' >"$src/README.TXT"
  write_eicar "$src/eicar.com"
  printf 'inside a subdirectory\n' >"$src/subdir/inner.txt"
  write_deleted "$src/secret.txt"
  write_deleted "$src/subdir/deleted long name.txt"
  stamp_tree "$src"
  new_fat "$fat_simple" 2M 12 0badcafe BSFAT12
  mmd -i "$fat_simple" ::/subdir
  fat_put "$fat_simple" "$src/README.TXT" /README.TXT
  fat_put "$fat_simple" "$src/eicar.com" /eicar.com
  fat_put "$fat_simple" "$src/secret.txt" /secret.txt
  fat_put "$fat_simple" "$src/subdir/inner.txt" /subdir/inner.txt
  fat_put "$fat_simple" "$src/subdir/deleted long name.txt" "/subdir/deleted long name.txt"
  mdel -i "$fat_simple" ::/secret.txt "::/subdir/deleted long name.txt"
}

# --- fat-clean.img: 1 MiB FAT12, ordinary files only: the clean device of the daemon tests --
fat_clean=$out/fat-clean.img
build_fat_clean() {
  local src=$tmp/fat-clean-src
  rm -rf "$src"
  mkdir -p "$src/docs"
  printf 'Borderscan clean FAT12 fixture\n' >"$src/README.TXT"
  printf 'Dear customer,\nyour parcel is on its way.\n' >"$src/docs/letter.txt"
  printf 'date,item,amount\n2024-05-01,tea,3.50\n' >"$src/docs/receipt.csv"
  stamp_tree "$src"
  new_fat "$fat_clean" 1M 12 0c1ea400 BSCLEAN
  mmd -i "$fat_clean" ::/docs
  fat_put "$fat_clean" "$src/README.TXT" /README.TXT
  fat_put "$fat_clean" "$src/docs/letter.txt" /docs/letter.txt
  fat_put "$fat_clean" "$src/docs/receipt.csv" /docs/receipt.csv
}

# --- ext4-simple.img: 4 MiB ext4, no partition table -------------------------------------
ext4_simple=$out/ext4-simple.img
build_ext4_simple() {
  local src=$tmp/ext4-simple-src
  rm -rf "$src"
  mkdir -p "$src/docs/deep"
  printf 'Borderscan ext4 fixture\n' >"$src/readme.txt"
  write_eicar "$src/eicar.com"
  printf 'nested two levels down\n' >"$src/docs/deep/nested.txt"
  : >"$src/empty.txt"
  write_deleted "$src/old.txt"
  stamp_tree "$src"
  new_ext "$ext4_simple" 4M ext4 0e4a5b6c-7d8e-4f90-a1b2-c3d4e5f60718 BSEXT4 "$src"
  ext_rm "$ext4_simple" /old.txt
}

# --- exfat-simple.img: 2 MiB exFAT, empty --------------------------------------------------
exfat_simple=$out/exfat-simple.img
build_exfat_simple() {
  rm -f "$exfat_simple"
  truncate -s 2M "$exfat_simple"
  mkfs.exfat -b 4K -c 4K -L BSEXFAT "$exfat_simple" >/dev/null
  tune.exfat -I 0x1234abcd "$exfat_simple" >/dev/null # mkfs.exfat 1.2.0 takes the serial from the clock
}

# --- iso-simple.iso ----------------------------------------------------------------------
iso_simple=$out/iso-simple.iso
build_iso_simple() {
  local src=$tmp/iso-src
  rm -rf "$src"
  mkdir -p "$src/docs"
  printf 'Borderscan ISO 9660 fixture\n' >"$src/readme.txt"
  write_eicar "$src/eicar.com"
  printf 'nested in docs\n' >"$src/docs/nested.txt"
  printf 'accented name\n' >"$src/$name_cafe"
  stamp_tree "$src"
  rm -f "$iso_simple"
  genisoimage -quiet -input-charset utf-8 -R -J -V BSISO -uid 0 -gid 0 \
    -o "$iso_simple" "$src"
}

# --- mbr-ext.img: 8 MiB MBR; p1 FAT12, p2 extended holding p5 ext2, p3 no file system ----
mbr=$out/mbr-ext.img
mbr_p1=2048
mbr_ext=6144
mbr_p5=8192
mbr_p3=12288
build_mbr() {
  local fat=$tmp/mbr-p1.fat ext=$tmp/mbr-p5.ext2 src=$tmp/mbr-src
  rm -rf "$src"
  mkdir -p "$src/fat" "$src/ext/data"
  printf 'primary FAT partition\n' >"$src/fat/PRIMARY.TXT"
  printf 'inside a logical partition\n' >"$src/ext/logical.txt"
  write_eicar "$src/ext/data/eicar.com"
  stamp_tree "$src"
  new_fat "$fat" 2M 12 0c0ffee1 BSMBRFAT
  fat_put "$fat" "$src/fat/PRIMARY.TXT" /PRIMARY.TXT
  new_ext "$ext" 2M ext2 2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901 BSLOGICAL "$src/ext"

  rm -f "$mbr"
  truncate -s 8M "$mbr"
  sfdisk --quiet --no-reread --no-tell-kernel "$mbr" <<EOF
label: dos
label-id: 0x0b5c0de1
unit: sectors

mbr-ext.img1 : start=$mbr_p1, size=4096, type=1
mbr-ext.img2 : start=$mbr_ext, size=6144, type=5
mbr-ext.img3 : start=$mbr_p3, size=4096, type=83
mbr-ext.img5 : start=$mbr_p5, size=4096, type=83
EOF
  put_at "$mbr" "$fat" "$mbr_p1"
  put_at "$mbr" "$ext" "$mbr_p5"
  # p3 stays zeros: a partition that claims Linux (0x83) but holds no file system.
}

# --- gpt-two-volumes.E01 and split/ --------------------------------------------------------
e01=$out/gpt-two-volumes.E01
split1=$out/split/gpt-two-volumes.img.001
build_e01() {
  rm -f "$out"/gpt-two-volumes.E??
  # Reads stdin and never prompts. EWF headers hold the acquisition date: not reproducible.
  ewfacquirestream -q -t "$out/gpt-two-volumes" -f encase6 -c deflate:best -m fixed -M physical \
    -C BORDERSCAN-FIXTURE -D gpt-two-volumes.img -e make-fixtures.sh -E 1 \
    -N 'Borderscan test fixture' <"$gpt" >/dev/null
  ewfverify -q "$e01" >"$tmp/ewfverify.out" 2>&1 || {
    cat "$tmp/ewfverify.out" >&2
    die "ewfverify failed on $e01"
  }
}
build_split() {
  rm -rf "$out/split"
  mkdir -p "$out/split"
  split -b 3M -d -a 3 --numeric-suffixes=1 "$gpt" "$out/split/gpt-two-volumes.img."
}

build_gpt
build_fat_simple
build_fat_clean
build_ext4_simple
build_exfat_simple
build_iso_simple
build_mbr
build_e01
build_split

# ---------------------------------------------------------------------------------------------
# Self-check with The Sleuth Kit

# No `grep -q` or early `exit` after a pipe below: with pipefail, the writer's SIGPIPE would
# count as a failure.

# listing IMAGE OFFSET: `fls -r -p` with inode numbers dropped: "r/r path" or "r/r * path".
listing() {
  fls -r -p -o "$2" "$1" | sed -E 's/^([^ ]+) (\* )?[0-9][^:	]*:	/\1 \2/'
}

# expect_files IMAGE OFFSET LINE...: each LINE must appear exactly in listing's output.
expect_files() {
  local img=$1 off=$2 got line
  shift 2
  got=$(listing "$img" "$off") || die "fls failed on $img at sector $off"
  for line in "$@"; do
    printf '%s\n' "$got" | grep -xF -- "$line" >/dev/null ||
      die "$(basename "$img") @ $off: fls does not list '$line'; it lists:"$'\n'"$got"
  done
}

# expect_content IMAGE OFFSET PATH SHA256: the file's content (deleted or not) read back by icat.
expect_content() {
  local img=$1 off=$2 path=$3 want=$4 inode got
  inode=$(fls -r -p -o "$off" "$img" | awk -F '\t' -v p="$path" '$2 == p && !n++ { print $1 }' |
    sed -E 's/^[^ ]+ (\* )?([0-9][0-9-]*).*/\2/')
  [ -n "$inode" ] || die "$(basename "$img") @ $off: no inode for $path"
  got=$(icat -o "$off" "$img" "$inode" | sha256sum | cut -d ' ' -f 1)
  [ "$got" = "$want" ] || die "$(basename "$img") @ $off: $path (inode $inode) has sha256 $got, want $want"
}

# expect_fs IMAGE OFFSET TYPE: fsstat names the file system TYPE.
expect_fs() {
  fsstat -o "$2" "$1" | grep -x "File System Type: $3" >/dev/null ||
    die "$(basename "$1") @ $2: fsstat does not say '$3'"
}

# expect_partition IMAGE START LENGTH DESCRIPTION-REGEX
expect_partition() {
  mmls "$1" | awk -v s="$2" -v l="$3" -v d="$4" \
    '$3 + 0 == s && $5 + 0 == l && $0 ~ d { found = 1 } END { exit !found }' ||
    die "$(basename "$1"): mmls shows no partition at $2 of $3 sectors matching '$4'"
}

check_gpt_volumes() { # IMAGE: the checks shared by the raw, E01 and split forms
  expect_partition "$1" "$gpt_p1" 6144 'Basic data partition|fat16'
  expect_partition "$1" "$gpt_p2" 8192 'Linux filesystem|ext4'
  expect_fs "$1" "$gpt_p1" FAT16
  expect_fs "$1" "$gpt_p2" Ext4
  expect_files "$1" "$gpt_p1" \
    'd/d docs' "r/r docs/$name_reunion" "r/r docs/$name_privet" 'r/r eicar.com' \
    'd/d photos' 'r/r photos/holiday.jpg' 'r/r * deleted-secret.txt'
  expect_files "$1" "$gpt_p2" \
    'd/d home/user' 'r/r home/user/notes.txt' "r/r home/user/$name_unicode" \
    'l/l home/user/link' 'r/r bin/tool.jpg' 'r/r * home/user/gone.txt'
  expect_content "$1" "$gpt_p1" eicar.com "$eicar_sha256"
  expect_content "$1" "$gpt_p1" photos/holiday.jpg "$elf_sha256"
  expect_content "$1" "$gpt_p1" deleted-secret.txt "$deleted_sha256"
  expect_content "$1" "$gpt_p2" bin/tool.jpg "$elf_sha256"
  expect_content "$1" "$gpt_p2" home/user/gone.txt "$deleted_sha256"
}

check_gpt_volumes "$gpt"
mmls "$gpt" | grep 'GUID Partition Table' >/dev/null || die "gpt-two-volumes.img: mmls does not see GPT"

check_gpt_volumes "$e01"
[ "$(img_stat "$e01" | sed -n 's/^Image Type:[[:space:]]*//p')" = ewf ] || die "img_stat: $e01 is not EWF"
# ewfverify checked the stored MD5 against the data; the data must be the raw disk's.
grep -q "MD5 hash calculated over data:[[:space:]]*$(md5sum <"$gpt" | cut -d ' ' -f 1)\$" \
  "$tmp/ewfverify.out" || die "$e01 does not hold the bytes of gpt-two-volumes.img"
[ "$(img_stat "$split1" | sed -n 's/^Image Type:[[:space:]]*//p')" = raw ] || die "img_stat: $split1 is not raw"
# libtsk finds .002, .003 by itself when given the .001 segment.
img_stat "$split1" | grep 'gpt-two-volumes.img.003' >/dev/null || die "libtsk does not see all split segments"
check_gpt_volumes "$split1"
for image in "$e01" "$split1"; do
  for off in "$gpt_p1" "$gpt_p2"; do
    cmp -s <(fls -r -p -o "$off" "$gpt") <(fls -r -p -o "$off" "$image") ||
      die "fls differs between gpt-two-volumes.img and $image at sector $off"
  done
done

expect_fs "$fat_simple" 0 FAT12
expect_files "$fat_simple" 0 'r/r README.TXT' 'r/r eicar.com' 'd/d subdir' 'r/r subdir/inner.txt' \
  'r/r * _ecret.txt' 'r/r * subdir/deleted long name.txt'
expect_content "$fat_simple" 0 eicar.com "$eicar_sha256"
expect_content "$fat_simple" 0 _ecret.txt "$deleted_sha256"
expect_content "$fat_simple" 0 'subdir/deleted long name.txt' "$deleted_sha256"

expect_fs "$fat_clean" 0 FAT12
expect_files "$fat_clean" 0 'r/r README.TXT' 'd/d docs' 'r/r docs/letter.txt' 'r/r docs/receipt.csv'

expect_fs "$ext4_simple" 0 Ext4
expect_files "$ext4_simple" 0 'r/r readme.txt' 'r/r eicar.com' 'd/d docs/deep' \
  'r/r docs/deep/nested.txt' 'r/r empty.txt' 'r/r * old.txt'
expect_content "$ext4_simple" 0 eicar.com "$eicar_sha256"
expect_content "$ext4_simple" 0 old.txt "$deleted_sha256"

expect_fs "$exfat_simple" 0 exFAT
# shellcheck disable=SC2016 # libtsk's virtual file names start with $
expect_files "$exfat_simple" 0 'r/r $ALLOC_BITMAP' 'r/r $UPCASE_TABLE'

expect_fs "$iso_simple" 0 ISO9660
expect_files "$iso_simple" 0 'r/r readme.txt' 'r/r eicar.com' 'r/r docs/nested.txt' "r/r $name_cafe"
expect_content "$iso_simple" 0 eicar.com "$eicar_sha256"

mmls "$mbr" | grep 'DOS Partition Table' >/dev/null || die "mbr-ext.img: mmls does not see an MBR"
expect_partition "$mbr" "$mbr_p1" 4096 'FAT12'
expect_partition "$mbr" "$mbr_ext" 6144 'Extended'
expect_partition "$mbr" "$mbr_p5" 4096 'Linux'
expect_partition "$mbr" "$mbr_p3" 4096 'Linux'
expect_fs "$mbr" "$mbr_p1" FAT12
expect_files "$mbr" "$mbr_p1" 'r/r PRIMARY.TXT'
expect_fs "$mbr" "$mbr_p5" Ext2
expect_files "$mbr" "$mbr_p5" 'r/r logical.txt' 'd/d data' 'r/r data/eicar.com'
expect_content "$mbr" "$mbr_p5" data/eicar.com "$eicar_sha256"
if fsstat -o "$mbr_p3" "$mbr" >/dev/null 2>&1; then
  die "mbr-ext.img: partition 3 was meant to hold no file system"
fi

echo "make-fixtures: all fixtures built and checked in $out"
