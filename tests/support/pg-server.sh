#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server for the tests: initdb into a fresh folder
# under $TMPDIR, listening only on a Unix socket in that folder, trust
# authentication (nothing else can reach the socket's folder).
#   pg-server.sh start STATE   starts it; STATE (a file) then holds the
#                              server's folder (line 1) and its URL (line 2)
#   pg-server.sh start STATE PID   the same, and stops it once process PID
#                              has exited, however it ended (a test binary
#                              that starts its own server and crashes)
#   pg-server.sh stop STATE    stops it and removes its folder and STATE
# PostgreSQL refuses to run as root: as root the server runs as `nobody`
# (setpriv, from util-linux, is on every Debian). Fails loudly, never skips:
# the PostgreSQL tests must not pass by not running.
set -euo pipefail

bin="${BORDERSCAN_PG_BIN:-/usr/lib/postgresql/15/bin}"
action="${1:-}"
state="${2:-}"
if [[ -z "$action" || -z "$state" ]]; then
  echo "usage: $0 start|stop STATE_FILE" >&2
  exit 2
fi

as_server_user() {
  if [[ $(id -u) -eq 0 ]]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

stop() {
  [[ -f "$state" ]] || return 0
  local dir
  dir=$(sed -n 1p "$state")
  if [[ -n "$dir" && -d "$dir/data" ]]; then
    # Immediate: the data is thrown away anyway.
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [[ -n "$dir" && "$dir" == */bs-pg.* ]] && rm -rf "$dir"
  rm -f "$state"
}

case "$action" in
  start)
    if [[ ! -x "$bin/initdb" ]]; then
      echo "pg-server.sh: no PostgreSQL 15 at $bin (Debian package postgresql-15; scripts/deps.sh test installs it)" >&2
      exit 1
    fi
    stop  # a server an earlier, interrupted run left behind
    # Short: a Unix socket's path has at most 107 bytes.
    dir=$(mktemp -d "${TMPDIR:-/tmp}/bs-pg.XXXXXX")
    if [[ $(id -u) -eq 0 ]]; then
      chown nobody:nogroup "$dir"
    fi
    if ! as_server_user "$bin/initdb" -D "$dir/data" -A trust -U borderscan -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1; then
      echo "pg-server.sh: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      rm -rf "$dir"
      exit 1
    fi
    # No TCP at all; fsync off: a test server's data need not survive a crash.
    if ! as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses='' -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null; then
      echo "pg-server.sh: the server did not start:" >&2
      cat "$dir/server.log" >&2
      rm -rf "$dir"
      exit 1
    fi
    printf '%s\npostgresql:///postgres?host=%s&user=borderscan\n' "$dir" "$dir" >"$state"
    if [[ -n "${3:-}" ]]; then
      owner="$3"
      # Detached from the caller's output, so that nothing waits for it.
      nohup bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec bash "$2" stop "$3"' _ \
        "$owner" "$0" "$state" >/dev/null 2>&1 &
    fi
    echo "PostgreSQL test server at $dir"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop STATE_FILE" >&2
    exit 2
    ;;
esac
