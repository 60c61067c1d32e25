#!/usr/bin/env bash
# The browser tests' two steps (tests/browser/CMakeLists.txt runs them):
#
#   browser-test.sh install SOURCE_DIR TOOLS_DIR
#       copies package.json and package-lock.json from SOURCE_DIR (this
#       folder) to TOOLS_DIR, in the build directory, and runs `npm ci`
#       there; skipped when TOOLS_DIR already holds that lock file's install.
#   browser-test.sh check SOURCE_DIR TOOLS_DIR BORDERSCAND ARTIFACTS WORK
#       runs console.test.mjs (node:test): the real daemon BORDERSCAND with a
#       scratch data dir under WORK, driven through Debian's chromium;
#       screenshots go to ARTIFACTS.
#
# Node.js, npm and chromium come from Debian's packages nodejs, npm and
# chromium (scripts/deps.sh test installs them).
set -uo pipefail
# shellcheck source=../support/npm-tools.sh
source "$(dirname "$0")/../support/npm-tools.sh"

# playwright-core must never fetch a browser: the tests use /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

fail() {
  echo "browser_tests: $*" >&2
  exit 1
}

mode="${1:-}"
src="${2:-}"
tools="${3:-}"
[[ -n "$mode" && -d "$src" && -n "$tools" ]] ||
  fail "usage: $0 install SOURCE_DIR TOOLS_DIR | check SOURCE_DIR TOOLS_DIR BORDERSCAND ARTIFACTS WORK"

case "$mode" in
  install)
    check_node 20
    need npm npm
    # playwright-core downloads no browser: the tests use Debian's chromium.
    npm_tools_install browser_tests "$src" "$tools" || exit 1
    ;;
  check)
    daemon="${4:-}"
    artifacts="${5:-}"
    work="${6:-}"
    [[ -x "$daemon" && -n "$artifacts" && -n "$work" ]] || fail "usage: $0 check SOURCE_DIR TOOLS_DIR BORDERSCAND ARTIFACTS WORK"
    check_node 20
    need chromium chromium
    need mkfs.vfat dosfstools
    need mcopy mtools
    need zip zip
    [[ -f "$tools/node_modules/playwright-core/package.json" ]] ||
      fail "playwright-core is not installed in $tools: run the browser_npm_ci test first (ctest -L browser)"
    mkdir -p "$artifacts" "$work" || fail "cannot create $artifacts or $work"
    run_suite() {
      BORDERSCAND="$daemon" BROWSER_TOOLS_DIR="$tools" BROWSER_ARTIFACTS="$artifacts" BROWSER_WORK="$work" \
        CHROMIUM="${CHROMIUM:-$(command -v chromium)}" \
        node --test --test-reporter=spec "$src/console.test.mjs"
    }
    # Once seen failing under the whole suite's load and passing alone: a
    # failed run is shown in full and the suite runs once more; a real break
    # fails both runs.
    if ! run_suite; then
      echo "browser_tests: the run above FAILED; running the suite once more to tell load from a break" >&2
      run_suite || exit 1
    fi
    ;;
  *)
    fail "unknown step '$mode'; use install or check"
    ;;
esac
