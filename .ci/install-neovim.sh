#!/usr/bin/env bash
# Debian's neovim (0.7.2 on Debian 12) for tests/lsp_neovim.rs, which drives neovim's own LSP
# client against `pipe lsp`.
exec bash "$(dirname "$0")/apt-install.sh" nvim neovim
