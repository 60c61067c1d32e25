#!/usr/bin/env bash
# Installs the Debian 12 packages Borderscan needs to build, run and test,
# skipping the apt work when everything is already there.
# Usage: scripts/deps.sh [build|test]   (default: test, which is a superset)
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config
  libtsk-dev libewf-dev libqcow-dev libvhdi-dev libvmdk-dev libbfio-dev libmagic-dev libmagic-mgc libyara-dev libarchive-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libseccomp-dev
  libboost1.81-dev libboost-url1.81-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libsqlite3-dev libpq-dev
  libbde-dev libluksde-dev libfvde-dev
  dpkg-dev file
)
test_packages=(
  libgtest-dev libgmock-dev libvalijson-dev
  sleuthkit dosfstools mtools exfatprogs e2fsprogs genisoimage ewf-tools fdisk
  cryptsetup-bin apfsprogs
  gzip coreutils python3 zip p7zip-full libarchive-tools xz-utils zstd bzip2 lz4 cpio gcab binutils qemu-utils openssl curl jq
  nodejs npm chromium
  postgresql-15
  groff-base systemd adduser
  clang libclang-rt-14-dev  # libFuzzer runs: tests/fuzz/run-fuzzers.sh
  wrk  # tests/reliability/load_test.cpp (skipped without it)
)

mode="${1:-test}"
wanted=("${build_packages[@]}")
if [[ "$mode" == "test" ]]; then
  wanted+=("${test_packages[@]}")
fi

missing=()
for p in "${wanted[@]}"; do
  # A Node.js build from outside Debian (NodeSource's nodejs) ships npm itself
  # and conflicts with Debian's npm package: its npm command is enough.
  if [[ "$p" == "npm" ]] && command -v npm >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
