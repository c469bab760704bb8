#!/usr/bin/env bash
# sqlite3 for the SQLite restore drills (std/sqlite, the release example, tests/deliver_drill.rs).
# Nothing to do when it is already on PATH.
set -euo pipefail
if command -v sqlite3 >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends sqlite3
