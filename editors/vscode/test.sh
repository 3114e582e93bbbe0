#!/usr/bin/env bash
# Builds and unit-tests the VS Code extension: npm ci (skipped when node_modules matches
# package-lock.json), the config sync check, tsc (build and --noEmit against @types/vscode),
# then node's test runner on the compiled JS. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_loglevel=error npm_config_fund=false npm_config_audit=false

# npm writes node_modules/.package-lock.json on install; newer than package-lock.json = current.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci
fi
node scripts/sync-config.mjs --check
npx tsc -p .
npx tsc -p . --noEmit
node --test --test-reporter=spec out/test/*.test.js test/*.test.mjs
