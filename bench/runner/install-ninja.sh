#!/usr/bin/env bash
# Installs ninja for bench/runner/run.sh when it is missing: Debian's `ninja-build`, else PyPI's
# `ninja` in a virtualenv under bench/runner/.venv (printed on stdout as the directory to add to
# PATH). The benchmark is not part of CI; this runs only when a person runs the benchmark.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if command -v ninja >/dev/null 2>&1; then
    exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if command -v apt-get >/dev/null 2>&1 \
    && as_root apt-get install -y -o DPkg::Lock::Timeout=300 ninja-build >&2; then
    exit 0
fi
python3 -m venv "$here/.venv" >&2
"$here/.venv/bin/pip" install --quiet 'ninja==1.11.1.4' >&2
echo "$here/.venv/bin"
