#!/usr/bin/env bash
# Regenerates the seed corpora (small inputs built by real tools).
# Usage: make-seeds.sh [BUILD_DIR]  (with a build holding bin/borderscan and
# bin/borderscand, the report and compact hash-set seeds are made too).
set -euo pipefail
build="$(cd "${1:-$(dirname "$0")/../../build}" 2>/dev/null && pwd || true)"
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

# Configuration: the documented file, and a small one setting a key of each table.
cfg="$here/corpus/config"
mkdir -p "$cfg"
cp "$here/../../config/borderscand.toml" "$cfg/documented.toml"
cat > "$cfg/small.toml" <<'TOML'
[http]
listen = "[::1]:8443"
header_limit_bytes = 16384
[storage]
data_dir = "/var/lib/borderscan"
keep_flagged_days = 7
[jobs]
workers = 2
[rules]
known_bad = ["/etc/borderscan/bad.txt"]
[limits]
max_depth = 4
[worker]
isolation = "process"
[log]
level = "warn"
TOML

# Hash sets: text, Project VIC VICS JSON, an NSRL RDS v3 database (the FILE
# view's columns as a table, as derived releases ship it) and a compact file.
hs="$here/corpus/hashset"
mkdir -p "$hs"
cat > "$hs/list.txt" <<'TXT'
# known bad
d41d8cd98f00b204e9800998ecf8427e empty file
da39a3ee5e6b4b0d3255bfef95601890afd80709
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855	tab named
TXT
cat > "$hs/vics.json" <<'JSON'
{"odata.metadata":"http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media","value":[
{"MediaID":17,"Category":1,"MD5":"D41D8CD98F00B204E9800998ECF8427E","SHA1":"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
 "MediaFiles":[{"MD5":"ffffffffffffffffffffffffffffffff","FileName":"a.jpg"}]},
{"MediaID":"19","MD5":"","SHA1":null}]}
JSON
rm -f "$hs/nsrl.db"
sqlite3 "$hs/nsrl.db" "PRAGMA page_size=512; CREATE TABLE FILE (sha256, sha1, md5, file_name, file_size, package_id);
INSERT INTO FILE VALUES ('E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855',
 'DA39A3EE5E6B4B0D3255BFEF95601890AFD80709', 'D41D8CD98F00B204E9800998ECF8427E', 'empty.txt', 0, 1);
INSERT INTO FILE VALUES ('', '', '0123456789ABCDEF0123456789ABCDEF', 'md5only', 3, 2); VACUUM;"
if [[ -x "$build/bin/borderscand" ]]; then
  printf '[storage]\ndata_dir = "%s"\n' "$w/data" > "$w/d.toml"
  "$build/bin/borderscand" --config "$w/d.toml" hashset import --format text --kind known-bad --name seed \
    "$hs/list.txt" >/dev/null
  cp "$w/data/hashsets/seed.bhs" "$hs/compact.bhs"
fi

# Worker protocol: the messages a worker writes, and a worker command line
# (one argument per line).
wp="$here/corpus/worker_protocol"
mkdir -p "$wp"
cat > "$wp/messages.jsonl" <<'JSONL'
{"pid":4242,"ruleset":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","type":"started"}
{"bytes_done":4096,"bytes_total":65536,"files_done":1,"files_found":3,"type":"progress"}
{"path":"/var/spool/x.report.json","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"type":"report"}
{"code":"rules_invalid","message":"rules/x.yar(3): syntax error","type":"error"}
JSONL
printf '%s\n' --image /spool/a.img --image /spool/a.img.002 --rules /etc/rules --hashset /h/nsrl.bhs:known-good \
  --compiled-rules /d/rules/x.yarc --compiled-rules-sha256 00ff --limits '{"max_depth":3,"flag_severity":"high"}' \
  --scan-id 5eed0000000000000000000000000001 --station kiosk-1 --name stick.img --report /spool/r.json \
  --max-report-bytes 1048576 -j 2 --memory-limit 4294967296 --parent-pid 1 --no-seccomp > "$wp/arguments.txt"

# Report: a real scan of the FAT12 seed under the scan id the HTTP target
# stores it as (fuzz_http reads it from here).
if [[ -x "$build/bin/borderscan" ]]; then
  "$build/bin/borderscan" scan --quiet -o "$w/report.json" "$img/fat12.img" || true
  python3 - "$w/report.json" "$here/corpus/report/fat12.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["scan_id"] = "5eed0000000000000000000000000001"
doc["station"] = "kiosk-1"
doc["started_at"] = doc["finished_at"] = "2020-01-01T00:00:00.000Z"
doc["timings"]["duration_ms"] = 5
open(sys.argv[2], "w").write(json.dumps(doc, indent=2) + "\n")
PY
fi

# HTTP: requests as clients send them, with the fixed tokens of fuzz_daemon.hpp.
http="$here/corpus/http"
mkdir -p "$http"
seed_id=5eed0000000000000000000000000001
crlf() { sed 's/$/\r/'; }
crlf > "$http/healthz.txt" <<'REQ'
GET /healthz HTTP/1.1
Host: x

REQ
crlf > "$http/reports-pipelined.txt" <<REQ
GET /api/v1/reports?limit=5&verdict=clean HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-reviewer

GET /api/v1/reports/$seed_id/overview HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-reviewer

GET /api/v1/reports/$seed_id/files?limit=2 HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-reviewer

GET /api/v1/scans/$seed_id/report HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-admin

REQ
{ crlf <<'REQ'
POST /api/v1/scans?filename=stick.img&label=bag%2012 HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-station
Content-Type: application/octet-stream
X-Image-SHA256: 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
Content-Length: 6

REQ
printf 'hello\n'; } > "$http/upload.txt"
{ crlf <<'REQ'
POST /api/v1/scans HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-admin
Transfer-Encoding: chunked

REQ
printf '6\r\nhello\n\r\n0\r\n\r\n'; } > "$http/upload-chunked.txt"
review='{"decision":"cleared","note":"checked by hand"}'
{ crlf <<REQ
POST /api/v1/reports/$seed_id/reviews HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-reviewer
Content-Type: application/json
Content-Length: ${#review}

REQ
printf '%s' "$review"; } > "$http/review.txt"
token='{"name":"kiosk-9","role":"station"}'
{ crlf <<REQ
POST /api/v1/tokens HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-admin
Content-Type: application/json
Content-Length: ${#token}

REQ
printf '%s' "$token"; } > "$http/token.txt"
crlf > "$http/console-and-errors.txt" <<REQ
GET /index.html HTTP/1.1
Host: x
If-None-Match: "x"

PUT /api/v1/scans/$seed_id HTTP/1.1
Host: x

GET /api/v1/files?sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-reviewer

DELETE /api/v1/reports/$seed_id HTTP/1.1
Host: x
Authorization: Bearer bst_fuzz-station

REQ
echo "seeds written to $here/corpus" >&2
