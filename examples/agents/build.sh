#!/bin/sh
# Builds the release file: its version, and whether it is healthy (AGENTS_BAD=1: not).
set -eu
mkdir -p build
healthy=yes
if [ "${AGENTS_BAD:-}" = 1 ]; then healthy=no; fi
printf 'version=%s\nhealthy=%s\n' "$1" "$healthy" > build/release.txt
