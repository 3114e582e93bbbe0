#!/usr/bin/env bash
# Packages the extension as editors/vscode/tandem.vsix with @vscode/vsce (a devDependency):
# npm ci when node_modules is missing or older than package-lock.json, tsc, then
# `vsce package`. Prints the .vsix path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_loglevel=error npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# npm writes node_modules/.package-lock.json on install; newer than package-lock.json = current.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci >&2
fi
npx tsc -p . >&2
rm -f tandem.vsix
# --skip-license: the licence is the repository's (MIT OR Apache-2.0), not a file here.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! npx vsce package --skip-license -o tandem.vsix >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
grep -E '^ *(DONE|ERROR)' "$log" >&2 || true
echo "$PWD/tandem.vsix"
