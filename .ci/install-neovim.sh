#!/usr/bin/env bash
# Installs Debian's neovim (0.7.2 on Debian 12) for tests/lsp_neovim.rs, which drives neovim's
# own LSP client against `pipe lsp`. Nothing to do when nvim is already on PATH.
set -euo pipefail
if command -v nvim >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends neovim
