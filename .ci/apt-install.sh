#!/usr/bin/env bash
# Usage: apt-install.sh PROBE PACKAGE...
# Installs Debian PACKAGEs unless PROBE is already there: an executable path, or a command on PATH.
# The install-*.sh scripts name what each test needs; this is the one place that calls apt.
set -euo pipefail
probe="$1"
shift
if [ -x "$probe" ] || command -v "$probe" >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
