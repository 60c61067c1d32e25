# Shell functions the benchmark scripts share (sourced by bench/upload.sh and bench/report.sh).
# They expect: die MESSAGE (the caller's), and the caller's variables named below.

# start_daemon DAEMON CONFIG WORKDIR: starts borderscand in the background with its port file and
# log in WORKDIR, waits until /readyz says 200, and sets daemon_pid and url.
start_daemon() {
  local daemon=$1 cfg=$2 work=$3 code=
  "$daemon" serve --config "$cfg" --port-file "$work/port" >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 300); do
    [[ -s "$work/port" ]] && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; die "borderscand exited at start-up"; }
    sleep 0.1
  done
  [[ -s "$work/port" ]] || die "borderscand wrote no port file within 30 s"
  url=http://127.0.0.1:$(cat "$work/port")
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true)
    [[ "$code" == 200 ]] && break
    sleep 0.1
  done
  [[ "$code" == 200 ]] || { curl -s "$url/readyz" >&2 || true; die "borderscand not ready (/readyz $code)"; }
}

# stop_daemon: SIGTERM to daemon_pid (when it still runs) and wait for it.
stop_daemon() {
  if [[ -n "${daemon_pid:-}" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
}
