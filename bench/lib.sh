# Shell functions the benchmark scripts share (sourced by bench/upload.sh and bench/report.sh).
# They expect: die MESSAGE (the caller's), and the caller's variables named below.

# start_daemon DAEMON CONFIG WORKDIR: starts borderscand in the background with its port file and
# log in WORKDIR, waits until /readyz says 200, and sets daemon_pid and url. Every curl of the
# benchmark (also those the Python helpers start) then sends an admin token of that daemon: it is
# made on the data dir first and put in WORKDIR/.curlrc, which curl reads through CURL_HOME, and in
# BORDERSCAN_TOKEN for the helpers' own requests.
start_daemon() {
  local daemon=$1 cfg=$2 work=$3 code= token=
  if [[ ! -s "$work/.curlrc" ]]; then
    token=$("$daemon" token create --role admin --name bench --config "$cfg" | tail -n 1 | awk '{print $NF}') ||
      die "borderscand token create failed"
    printf 'header = "Authorization: Bearer %s"\n' "$token" >"$work/.curlrc"
    printf '%s\n' "$token" >"$work/token"
  fi
  export CURL_HOME=$work
  BORDERSCAN_TOKEN=$(cat "$work/token")  # for the Python helpers' own HTTP requests
  export BORDERSCAN_TOKEN
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
