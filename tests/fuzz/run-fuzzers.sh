#!/usr/bin/env bash
# Builds the libFuzzer binaries with clang (its own build dir) and runs each
# fuzz target for a bounded time, one after the other, on a copy of its seed
# corpus. A crash, a broken property, a leak-free OOM or a timeout stops that
# fuzzer; the script then fails and names the input it kept.
#
#   tests/fuzz/run-fuzzers.sh SECONDS [TARGET...]   (SECONDS 0: build only)
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (parallel build
# jobs, default 2), FUZZ_RSS_MB (default 2048), FUZZ_WORK (corpora, findings
# and logs; default $FUZZ_BUILD_DIR/fuzz-work).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:?usage: run-fuzzers.sh SECONDS [TARGET...]}"
shift
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(fuzz_config fuzz_worker_protocol fuzz_hashset fuzz_report fuzz_http fuzz_object fuzz_image)
fi
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
work="${FUZZ_WORK:-$build/fuzz-work}"
rss="${FUZZ_RSS_MB:-2048}"

need() { command -v "$1" >/dev/null || { echo "run-fuzzers.sh: $1 is missing (Debian: clang, libclang-rt-14-dev)" >&2; exit 2; }; }
need clang
need clang++
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Every library is instrumented for coverage (fuzzer-no-link), so libFuzzer
# steers by what the parsers do, not only by the target's own file. -O1 with
# line tables only: the usual fuzzing build, and half the compile time of -O2 -g.
opt="-O1 -gline-tables-only -DNDEBUG"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DBORDERSCAN_FUZZ=ON -DBORDERSCAN_SANITIZE=ON \
  -DBORDERSCAN_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="$opt" \
  -DCMAKE_CXX_FLAGS_RELEASE="$opt" -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
  -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link "${launcher[@]}" >/dev/null
cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target "${targets[@]/%/_libfuzzer}"
[[ "$seconds" == 0 ]] && exit 0

# Scratch files of the targets (SQLite stores, spool files) stay in memory.
if [[ -d /dev/shm && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi
# The worker parses images under an address-space limit (4 GiB by default), so
# a C library's allocation sized by a crafted field (libtsk allocates, and
# copies, an ext4 inode's claimed inline-data size) is bounded there and fails
# past it, and the library reports an error. Here, under ASan's overhead and
# the 2 GiB RSS limit, single C allocations over 512 MiB fail instead. C++
# `new` still stops the fuzzer, so our own code's huge allocations are found.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=512:suppressions=$here/asan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  corpus="$work/corpus/$name"
  found="$work/found/$name"
  mkdir -p "$corpus" "$found"
  args=(-max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=30 -print_final_stats=1
    -artifact_prefix="$found/")
  case "$name" in
    image) args+=(-max_len=1048576) ;;
    object | report) args+=(-max_len=262144) ;;
    *) args+=(-max_len=65536) ;;
  esac
  if [[ -f "$here/dict/$name.dict" ]]; then
    args+=(-dict="$here/dict/$name.dict")
  fi
  echo "== $t: ${seconds}s" >&2
  log="$work/$name.log"
  # New finds go to the work corpus; the seeds are read, never written.
  if "$build/bin/${t}_libfuzzer" "${args[@]}" "$corpus" "$here/corpus/$name" >"$log" 2>&1; then
    grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1 >&2 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" >&2 || true
    echo "   corpus: $(find "$corpus" -type f | wc -l) files" >&2
  else
    tail -40 "$log" >&2
    echo "!! $t failed; inputs kept in $found (log: $log)" >&2
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzers that found something: ${failed[*]}" >&2
  exit 1
fi
