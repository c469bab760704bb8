#!/usr/bin/env bash
# sqlite3 for the SQLite restore drills (std/sqlite, the release example, tests/deliver_drill.rs).
exec bash "$(dirname "$0")/apt-install.sh" sqlite3 sqlite3
