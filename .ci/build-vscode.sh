#!/usr/bin/env bash
# Builds the VS Code extension in editors/vscode from its lock file: installs the pinned npm
# packages, checks the client loads and finds its binary, runs the grammar tests
# (vscode-tmgrammar-test) and packages the .vsix with @vscode/vsce. Needs Node 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/../editors/vscode"
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "error: Node $node_major found; @vscode/vsce 3 needs Node 20 or later" >&2
  exit 1
fi
npm ci --no-audit --no-fund
node test/extension.test.js
npm test
npx vsce package --skip-license --allow-missing-repository --out pipe-language.vsix
