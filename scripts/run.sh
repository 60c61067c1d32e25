#!/usr/bin/env bash
# Installs what is missing, builds Release and starts the daemon on the
# embedded default: SQLite and spool in ./var, the shipped rules/, listening
# on 127.0.0.1:8080 (BORDERSCAN_LISTEN=HOST:PORT overrides). Extra arguments
# go to borderscand (e.g. --config FILE). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBORDERSCAN_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j "$(nproc)"

listen="${BORDERSCAN_LISTEN:-127.0.0.1:8080}"
url="http://${listen}"
cat >&2 <<MSG
borderscand on ${url}  (data in ./var, rules from ./rules, config: config/borderscand.toml)
No token is needed yet: access control comes in a later issue, so the daemon listens on loopback only.
Submit an image (name your station in X-Station):
  curl -sS -T IMAGE -X POST -H 'X-Station: kiosk-1' -H 'Content-Type: application/octet-stream' ${url}/api/v1/scans
Follow the scan and fetch its report (ID from the answer above):
  curl -N ${url}/api/v1/scans/ID/events
  curl -sS ${url}/api/v1/scans/ID/report
Flagged reports: curl -sS '${url}/api/v1/reports?verdict=flagged'
Scan an image offline instead: build-release/bin/borderscan scan IMAGE
Stop with Ctrl-C (running scans get 30 s to finish).
MSG
exec build-release/bin/borderscand serve --config config/borderscand.toml --listen "$listen" "$@"
