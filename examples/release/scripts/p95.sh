#!/bin/sh
# p95.sh URL — sends 20 requests to URL/, then prints the service's 95th-percentile latency
# over its metrics window as a duration literal (`3ms`). Exits non-zero if the service does
# not answer, which the watch counts as a breach.
set -eu
[ $# -eq 1 ] || { echo "usage: p95.sh URL" >&2; exit 2; }
exec "$(dirname "$0")/metric.sh" "$1" p95
