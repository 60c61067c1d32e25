#!/usr/bin/env bash
# Proves that two builds of the CLI give every file the same libmagic answer (issue #12): scans
# each image with both and compares (volume, path, mime, description) of every file entry of the
# reports, archive members included.
#
#   bench/magic-compare.sh [--jobs N] [--keep DIR] OLD_BIN NEW_BIN IMAGE...
#
#   OLD_BIN, NEW_BIN  `borderscan` executables (e.g. a build of main and a build of the branch)
#   IMAGE             device images; *.gz ones are decompressed into a temporary folder first
#   --jobs N          scanner threads for both (default 2)
#   --keep DIR        keep the reports in DIR (IMAGE.old.json, IMAGE.new.json)
#
# Entries are matched on (volume, path, inode, deleted, type, container, depth), so a deleted and
# an allocated file of the same name stay apart. Prints, per image, how many entries each report
# has, how many carry a MIME type, how many distinct (mime, description) pairs they hold and every
# difference; then a total line. Exits 1 on any difference (or an entry present in one report
# only), 2 on a usage or scan error.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

jobs=2
keep=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "magic-compare: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -ge 3 ]] || usage
old_bin=$1
new_bin=$2
shift 2
for bin in "$old_bin" "$new_bin"; do
  [[ -x "$bin" ]] || { echo "magic-compare: not an executable: $bin" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "magic-compare: python3 is needed" >&2; exit 2; }

exec </dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[[ -z "$keep" ]] || mkdir -p "$keep"
out=${keep:-$tmp}

scan() {  # BIN IMAGE REPORT
  # Exit 1 means "flagged", not failure; a report that exists is what counts.
  local rc=0
  "$1" scan -q --jobs "$jobs" -o "$3" "$2" || rc=$?
  if [[ ! -s "$3" ]]; then
    echo "magic-compare: $1 wrote no report for $2 (exit $rc)" >&2
    exit 2
  fi
}

pairs=()
n=0
for image in "$@"; do
  [[ -f "$image" ]] || { echo "magic-compare: no such image: $image" >&2; exit 2; }
  n=$((n + 1))
  name=$(basename "$image")
  if [[ "$image" == *.gz ]]; then
    name=${name%.gz}
    mkdir -p "$tmp/img$n"
    gunzip -c "$image" >"$tmp/img$n/$name"
    image="$tmp/img$n/$name"
  fi
  scan "$old_bin" "$image" "$out/$n-$name.old.json"
  scan "$new_bin" "$image" "$out/$n-$name.new.json"
  pairs+=("$name" "$out/$n-$name.old.json" "$out/$n-$name.new.json")
done

python3 - "${pairs[@]}" <<'EOF'
import json
import sys
from collections import Counter

def entries(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    out = Counter()
    for e in report["files"]:
        key = (e.get("volume"), e.get("path"), e.get("inode"), e.get("deleted"), e.get("type"),
               e.get("container"), e.get("depth"))
        out[(key, e.get("mime"), e.get("description"))] += 1
    return out

def show(key):
    volume, path, inode, deleted, _type, _container, _depth = key
    return f"volume {volume} {path!r} (inode {inode}{', deleted' if deleted else ''})"

args = sys.argv[1:]
total = Counter()
failed = False
for i in range(0, len(args), 3):
    name, old_path, new_path = args[i:i + 3]
    old, new = entries(old_path), entries(new_path)
    typed = sum(c for (k, m, d), c in new.items() if m is not None)
    kinds = len({(m, d) for (k, m, d) in new if m is not None})
    members = sum(c for (k, m, d), c in new.items() if k[5] is not None)
    only_old, only_new = old - new, new - old
    by_key = {}
    for (k, m, d), c in only_old.items():
        by_key.setdefault(k, [[], []])[0].append((m, d, c))
    for (k, m, d), c in only_new.items():
        by_key.setdefault(k, [[], []])[1].append((m, d, c))
    status = "same" if not by_key else f"{len(by_key)} DIFFERENT"
    print(f"{name}: {sum(old.values())} entries old, {sum(new.values())} new; {typed} typed "
          f"({members} archive members), {kinds} distinct (mime, description); {status}")
    for k, (was, now) in sorted(by_key.items(), key=lambda kv: repr(kv[0])):
        print(f"  {show(k)}")
        for m, d, c in was:
            print(f"    old: {m!r} {d!r}" + (f" x{c}" if c > 1 else ""))
        for m, d, c in now:
            print(f"    new: {m!r} {d!r}" + (f" x{c}" if c > 1 else ""))
    total["images"] += 1
    total["entries"] += sum(new.values())
    total["typed"] += typed
    total["members"] += members
    total["different"] += len(by_key)
    failed = failed or bool(by_key)
print(f"total: {total['images']} images, {total['entries']} entries, {total['typed']} typed "
      f"({total['members']} archive members), {total['different']} different")
sys.exit(1 if failed else 0)
EOF
