#!/usr/bin/env bash
# python3 for tests/store_conformance.rs: it runs the standalone audit verifier of docs/audit.md
# on `pipe audit export` output.
exec bash "$(dirname "$0")/apt-install.sh" python3 python3
