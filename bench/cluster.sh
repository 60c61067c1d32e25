#!/usr/bin/env bash
# Several nodes on one PostgreSQL database (issue #18): a burst of small scans, uploaded at once,
# timed from the first upload until every scan is done, with one node and with two nodes on this
# machine. Each run has a fresh database (on a throw-away server, tests/support/pg-server.sh), fresh
# data folders and one shared spool folder; the two-node run's uploads alternate between the nodes.
# Rounds alternate the order (one, two / two, one); the figure to quote is the ratio of the times
# within a round (one node / two nodes: above 1 means two nodes finish the burst sooner), not the
# seconds, since the machine is shared. Builds nothing.
#
#   bench/cluster.sh [--scans N] [--rounds N] [--workers N] [--image FILE] [--bin-dir DIR] [--keep]
#
#   --scans N     scans in the burst (default 40)
#   --rounds N    rounds (default 3)
#   --workers N   jobs.workers of each node (default: the machine's cores, the daemon's default)
#   --image FILE  the image every upload sends (default: build/fixtures/fat-simple.img, a 2 MiB FAT
#                 image with an EICAR file: each scan must end `flagged`)
#   --bin-dir DIR where borderscand is (default: $BORDERSCAN_BIN_DIR, else build/bin)
#   --keep        keep the temporary folder (configurations, daemon logs) and print its path
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
scans=40
rounds=3
workers=$(nproc)
image=$repo/build/fixtures/fat-simple.img
bin_dir=${BORDERSCAN_BIN_DIR:-$repo/build/bin}
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scans) scans=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
daemon_bin=$bin_dir/borderscand
[[ -x "$daemon_bin" ]] || { echo "cluster.sh: no $daemon_bin (build the borderscand target)" >&2; exit 1; }
[[ -f "$image" ]] || { echo "cluster.sh: no image $image (ctest -R make_fixtures makes it)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bs-cluster.XXXXXX")
pg_state=$work/pg.state
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash "$repo/tests/support/pg-server.sh" stop "$pg_state" >/dev/null 2>&1 || true
  if [[ $keep -eq 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
bash "$repo/tests/support/pg-server.sh" start "$pg_state" >/dev/null
admin_url=$(sed -n 2p "$pg_state")
server_dir=$(sed -n 1p "$pg_state")

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# run NAME NODES: one burst (NAME: its folder and database); sets `elapsed` to the seconds from the first upload until all are done.
run() {
  local nodes=$2 dir=$work/$1 db="b_$1" ports=() i
  mkdir -p "$dir/spool"
  psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
  local url="postgresql:///$db?host=$server_dir&user=borderscan"
  for ((i = 0; i < nodes; i++)); do
    mkdir -p "$dir/node$i"
    cat >"$dir/node$i.toml" <<EOF
[http]
listen = "127.0.0.1:0"
[storage]
data_dir = "$dir/node$i"
database = "$url"
spool_dir = "$dir/spool"
node_id = "node-$i"
min_free_spool_bytes = 0
[jobs]
workers = $workers
queue_capacity = $((scans + 8))
[log]
level = "warn"
EOF
    "$daemon_bin" serve --config "$dir/node$i.toml" --port-file "$dir/node$i.port" >"$dir/node$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 600); do [[ -s "$dir/node$i.port" ]] && break; sleep 0.1; done
    [[ -s "$dir/node$i.port" ]] || { echo "cluster.sh: node $i did not start:" >&2; cat "$dir/node$i.log" >&2; exit 1; }
    ports+=("$(cat "$dir/node$i.port")")
  done
  local token
  token=$("$daemon_bin" token create --role station --name kiosk --config "$dir/node0.toml" | tail -1 | awk '{print $NF}')
  local start end uploads=()
  start=$(date +%s.%N)
  for ((i = 0; i < scans; i++)); do
    curl -sS -X POST --data-binary @"$image" -H "Content-Type: application/octet-stream" -H "Authorization: Bearer $token" \
      "http://127.0.0.1:${ports[i % nodes]}/api/v1/scans" >"$dir/up$i.json" &
    uploads+=($!)
  done
  wait "${uploads[@]}"
  local ids=() id
  for ((i = 0; i < scans; i++)); do
    id=$(json_field id <"$dir/up$i.json") || { echo "cluster.sh: upload $i refused: $(cat "$dir/up$i.json")" >&2; exit 1; }
    ids+=("$id")
  done
  local left=("${ids[@]}") still status
  while [[ ${#left[@]} -gt 0 ]]; do
    still=()
    for id in "${left[@]}"; do
      status=$(curl -sS -H "Authorization: Bearer $token" "http://127.0.0.1:${ports[0]}/api/v1/scans/$id" | json_field status)
      case "$status" in
        done) ;;
        failed | cancelled) echo "cluster.sh: scan $id $status" >&2; exit 1 ;;
        *) still+=("$id") ;;
      esac
    done
    left=("${still[@]}")
    [[ ${#left[@]} -gt 0 ]] && sleep 0.1
  done
  end=$(date +%s.%N)
  # Every scan ran once.
  local done_entries
  done_entries=$(psql -At "$url" -c "SELECT count(*) FROM audit_log WHERE event = 'scan_done'")
  [[ "$done_entries" -eq "$scans" ]] || { echo "cluster.sh: $done_entries scan_done entries, not $scans" >&2; exit 1; }
  for ((i = 0; i < nodes; i++)); do
    kill -TERM "${pids[-1 - i]}" 2>/dev/null || true
  done
  for ((i = 0; i < nodes; i++)); do wait "${pids[-1 - i]}" 2>/dev/null || true; done
  pids=("${pids[@]:0:${#pids[@]}-nodes}")
  elapsed=$(python3 -c "print(f'{$end - $start:.2f}')")
}

echo "burst of $scans scans of $(basename "$image") ($(stat -c %s "$image") bytes), $workers workers a node, $(nproc) cores"
printf '| round | order | one node (s) | two nodes (s) | one / two |\n|---|---|---|---|---|\n'
ratios=()
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 1)); then
    run "r${r}one" 1; one=$elapsed; run "r${r}two" 2; two=$elapsed; order="one, two"
  else
    run "r${r}two" 2; two=$elapsed; run "r${r}one" 1; one=$elapsed; order="two, one"
  fi
  ratio=$(python3 -c "print(f'{$one / $two:.2f}')")
  ratios+=("$ratio")
  printf '| %d | %s | %s | %s | %s |\n' "$r" "$order" "$one" "$two" "$ratio"
done
python3 -c "import statistics,sys; print('median one / two:', statistics.median(map(float, sys.argv[1:])))" "${ratios[@]}"
