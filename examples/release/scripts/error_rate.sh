#!/bin/sh
# error_rate.sh URL — sends 20 requests to URL/, then prints the service's error rate over its
# metrics window as a percent literal (`0.0%`, `50.0%`). Exits non-zero if the service does
# not answer, which the watch counts as a breach.
set -eu
[ $# -eq 1 ] || { echo "usage: error_rate.sh URL" >&2; exit 2; }
exec "$(dirname "$0")/metric.sh" "$1" error_rate
