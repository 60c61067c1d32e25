#!/usr/bin/env bash
# Installs what is missing, builds Release and starts the daemon on the
# embedded default: SQLite and spool in ./var, the shipped rules/, listening
# on 127.0.0.1:8080 (BORDERSCAN_LISTEN=HOST:PORT overrides). Extra arguments
# go to borderscand (e.g. --config FILE). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh build-release  # the same build as docker/Dockerfile's

listen="${BORDERSCAN_LISTEN:-127.0.0.1:8080}"
url="http://${listen}"
config=config/borderscand.toml
daemon=build-release/bin/borderscand
extra=("$@")  # e.g. --data-dir: the token commands must see the same data dir

# First start of this embedded set-up: one token per role, shown once. (The
# daemon itself never makes tokens; production makes them with `token create`.)
if [[ "$("$daemon" token list --config "$config" "${extra[@]}" | wc -l)" -le 1 ]]; then
  make_token() {
    "$daemon" token create --role "$1" --name "$2" --config "$config" "${extra[@]}" | tail -n 1 | awk '{print $NF}'
  }
  admin_token=$(make_token admin admin)
  reviewer_token=$(make_token reviewer reviewer)
  station_token=$(make_token station kiosk-1)
  cat >&2 <<MSG
First start: made three API tokens. They are shown only now: keep them (the database stores
only their SHA-256). More with: $daemon token create --role ROLE --name NAME --config $config
  admin    (everything: tokens, audit, rules)  ${admin_token}
  reviewer (all reports, reviews)               ${reviewer_token}
  station  kiosk-1 (uploads, its own scans)     ${station_token}
Review console: ${url}/  (sign in with the reviewer token; the station token uploads)
Submit an image as kiosk-1 and wait for the verdict:
  build-release/bin/borderscan submit IMAGE --server ${url} --token ${station_token} --wait
MSG
fi
cat >&2 <<MSG
borderscand on ${url}  (data in ./var, rules from ./rules, config: ${config})
Review console: ${url}/ in a browser (sign in with a token).
Every API call needs a token: -H 'Authorization: Bearer TOKEN' (tokens: $daemon token list --config ${config}).
Submit an image with a station token (kiosk client, or curl):
  build-release/bin/borderscan submit IMAGE --server ${url} --token TOKEN --wait
  curl -sS -T IMAGE -X POST -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/octet-stream' ${url}/api/v1/scans
Follow the scan and fetch its report (ID from the answer above):
  curl -N -H 'Authorization: Bearer TOKEN' ${url}/api/v1/scans/ID/events
  curl -sS -H 'Authorization: Bearer TOKEN' ${url}/api/v1/scans/ID/report
Flagged reports (reviewer token): curl -sS -H 'Authorization: Bearer TOKEN' '${url}/api/v1/reports?verdict=flagged'
Scan an image offline instead: build-release/bin/borderscan scan IMAGE
Stop with Ctrl-C (running scans get 30 s to finish).
MSG
exec "$daemon" serve --config "$config" --listen "$listen" "${extra[@]}"
