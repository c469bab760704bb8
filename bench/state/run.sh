#!/usr/bin/env bash
# The shared-state benchmark (docs/benchmarks.md, "State backends"): the same workloads on the
# directory backend and on PostgreSQL, as paired, interleaved runs (A B A B …):
#  1. the 1,000-job wide plan of `true` (bench/runner/gen.py), --jobs 2;
#  2. one promote (build, lock, ledger, deploy `true`, record), whose difference between the
#     backends is the time the promote spends in state operations.
# PostgreSQL 15 is a throwaway cluster on a unix socket in the work directory (as the postgres
# user under root). Usage: bench/state/run.sh   (PAIRS=15, PIPE_BIN=path as for bench/runner)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pg_bin="${PIPE_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ -z "${PIPE_BIN:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    PIPE_BIN="$root/target/release/pipe"
fi
work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/pipe-bench-state.XXXXXX")"
chmod 755 "$work"
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop() { as_server "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap stop EXIT
mkdir -p "$work/pg/data" "$work/pg/sock"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/pg" "$work/pg/data" "$work/pg/sock"; fi
as_server "$pg_bin/initdb" -D "$work/pg/data" -A trust -U pipe -E UTF8 >/dev/null
as_server "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
    -o "-k $work/pg/sock -c listen_addresses=''" start >/dev/null

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(uname -sr), PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on a unix socket," \
    "$(date -u +%Y-%m-%dT%H:%MZ)"
python3 "$here/paired.py" --pipe "$PIPE_BIN" --pairs "${PAIRS:-7}" --workdir "$work" \
    --url "postgresql:///postgres?host=$work/pg/sock&user=pipe&schema=bench"
