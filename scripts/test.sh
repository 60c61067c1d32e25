#!/usr/bin/env bash
# Installs what is missing, builds in build/ and runs every test with ctest.
# Exits non-zero on any failure.
#   BORDERSCAN_SANITIZE=1  build into build-asan/ with ASan+UBSan instead
#   BUILD_DIR=...          override the build folder
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

sanitize="${BORDERSCAN_SANITIZE:-0}"
if [[ "$sanitize" == "1" ]]; then
  build_dir="${BUILD_DIR:-build-asan}"
  extra=(-DBORDERSCAN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  # libtsk and libmagic keep process-lifetime caches; leaks there are not ours.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
  build_dir="${BUILD_DIR:-build}"
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

cmake -S . -B "$build_dir" -G Ninja -DBORDERSCAN_BUILD_TESTS=ON -DBORDERSCAN_WERROR=ON "${extra[@]}"
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" -j "$(nproc)" --output-on-failure --timeout 600
