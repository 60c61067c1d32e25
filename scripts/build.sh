#!/usr/bin/env bash
# The Release build that scripts/run.sh and docker/Dockerfile share: installs
# what is missing (scripts/deps.sh build), configures BUILD_DIR for Release
# without tests and builds it; with --package also makes the Debian package
# (BUILD_DIR/borderscan_<version>_<arch>.deb, see docs/operations.md).
#   scripts/build.sh [--package] BUILD_DIR [cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."

package=0
if [[ "${1:-}" == "--package" ]]; then
  package=1
  shift
fi
if [[ $# -lt 1 ]]; then
  echo "usage: scripts/build.sh [--package] BUILD_DIR [cmake -D options...]" >&2
  exit 2
fi
build_dir=$1
shift

scripts/deps.sh build
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBORDERSCAN_BUILD_TESTS=OFF "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
if [[ $package -eq 1 ]]; then
  (cd "$build_dir" && cpack -G DEB)
fi
