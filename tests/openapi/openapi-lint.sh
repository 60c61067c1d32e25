#!/usr/bin/env bash
# The openapi_lint test's two steps (tests/openapi/CMakeLists.txt runs them):
#
#   openapi-lint.sh install SOURCE_DIR TOOLS_DIR
#       copies package.json and package-lock.json from SOURCE_DIR (this
#       folder) to TOOLS_DIR, in the build directory, and runs `npm ci`
#       there; skipped when TOOLS_DIR already holds that lock file's install.
#   openapi-lint.sh check SOURCE_DIR TOOLS_DIR SPEC
#       lints SPEC with `redocly lint` (the recommended rules; any error
#       fails) and validates it with swagger-parser (validate.cjs).
#
# Node.js and npm come from Debian's packages nodejs and npm
# (scripts/deps.sh test installs them).
set -uo pipefail
# shellcheck source=../support/npm-tools.sh
source "$(dirname "$0")/../support/npm-tools.sh"

# No usage data or notices from Redocly either (npm's are off in npm-tools.sh).
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_SUPPRESS_NOTIFICATIONS=true

fail() {
  echo "openapi_lint: $*" >&2
  exit 1
}

mode="${1:-}"
src="${2:-}"
tools="${3:-}"
[[ -n "$mode" && -d "$src" && -n "$tools" ]] ||
  fail "usage: $0 install SOURCE_DIR TOOLS_DIR | check SOURCE_DIR TOOLS_DIR SPEC"

case "$mode" in
  install)
    check_node 18
    need npm npm
    npm_tools_install openapi_lint "$src" "$tools" || exit 1
    ;;
  check)
    spec="${4:-}"
    [[ -f "$spec" ]] || fail "no OpenAPI description at '$spec'"
    check_node 18
    redocly="$tools/node_modules/@redocly/cli/bin/cli.js"
    [[ -f "$redocly" && -f "$tools/node_modules/@apidevtools/swagger-parser/package.json" ]] ||
      fail "the lint tools are not installed in $tools: run the openapi_npm_ci test first (ctest -R openapi)"
    status=0
    echo "== redocly lint (recommended rules) $(node "$redocly" --version 2>/dev/null | head -n1)"
    node "$redocly" lint --config "$src/redocly.yaml" "$spec" || status=1
    echo "== swagger-parser validate"
    node "$src/validate.cjs" "$tools" "$spec" || status=1
    if ((status != 0)); then
      fail "$spec has problems (see above)"
    fi
    echo "openapi_lint: $spec passes redocly lint and swagger-parser validation"
    ;;
  *)
    fail "unknown step '$mode'; use install or check"
    ;;
esac
