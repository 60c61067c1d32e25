# Sourced by the test scripts that run Node.js tools (tests/openapi,
# tests/browser), which define fail MESSAGE (print it and exit 1).
#
#   need COMMAND PACKAGE      fails naming the Debian package when COMMAND is missing
#   check_node MIN_MAJOR      fails when node is missing or older
#
# and installs a package-lock.json's packages into a folder of the build
# directory, never the source tree, once per lock file and Node.js:
#
#   npm_tools_install NAME SOURCE_DIR TOOLS_DIR
#
# NAME prefixes the messages; SOURCE_DIR holds package.json and
# package-lock.json. No install scripts run: none of the tools needs one, and
# no browser or binary is downloaded. Returns non-zero, saying why, on failure.

# No update checks, audits or funding notices: npm ci's download from the
# registry is the only network traffic.
export NO_UPDATE_NOTIFIER=1
export NPM_CONFIG_UPDATE_NOTIFIER=false
export NPM_CONFIG_AUDIT=false
export NPM_CONFIG_FUND=false

need() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "'$1' is not installed; it comes with the Debian package $2: run scripts/deps.sh test (or apt-get install $2)"
}

check_node() {
  need node nodejs
  local major
  major=$(node -p 'process.versions.node.split(".")[0]') || fail "'node' does not run"
  ((major >= $1)) || fail "Node.js $(node --version) is too old: these tools need Node.js $1 or later"
}

npm_tools_install() {
  local name="$1" src="$2" tools="$3"
  mkdir -p "$tools" || { echo "$name: cannot create $tools" >&2; return 1; }
  cp "$src/package.json" "$src/package-lock.json" "$tools/" ||
    { echo "$name: cannot copy the package files to $tools" >&2; return 1; }
  local stamp="$tools/node_modules/.borderscan-installed"
  local want
  want="$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1) node $(node --version)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$name: the tools of $tools/package-lock.json are installed"
    return 0
  fi
  echo "$name: npm ci in $tools"
  (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund) ||
    { echo "$name: npm ci failed in $tools (is the npm registry reachable?)" >&2; return 1; }
  echo "$want" >"$stamp"
}
