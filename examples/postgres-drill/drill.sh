#!/usr/bin/env bash
# The PostgreSQL drill end to end: build pipe, start a throwaway PostgreSQL 15 cluster on a
# unix socket (as the postgres user when run as root: PostgreSQL refuses root), load a small
# orders table, then show the schedule, run the due drill, and print the auditor's report.
# Exits 0 only when the drill passed. Needs Debian's postgresql-15 (.ci/install-postgres.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${PIPE_PG_BIN:-/usr/lib/postgresql/15/bin}"
cluster=/tmp/pipe-example-postgres   # the pipeline's PGHOST is $cluster/sock

pipe="${PIPE_BIN:-}"   # a pipe binary to use instead of building one
if [ -z "$pipe" ]; then
  echo "== building pipe (cargo build --release)"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  pipe="$root/target/release/pipe"
fi
export PATH="$bin:$PATH"
cd "$here"

as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop() { as_server "$bin/pg_ctl" -D "$cluster/data" -m fast -w stop >/dev/null 2>&1 || true; }

echo "== a throwaway PostgreSQL cluster in $cluster"
stop
rm -rf "$cluster" .pipe backups
mkdir -p "$cluster/data" "$cluster/sock"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$cluster/data" "$cluster/sock"; fi
as_server "$bin/initdb" -D "$cluster/data" -A trust -U pipe -E UTF8 >/dev/null
trap stop EXIT
as_server "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/data/server.log" -w \
  -o "-k $cluster/sock -c listen_addresses=''" start >/dev/null
psql() { "$bin/psql" --no-psqlrc -q -v ON_ERROR_STOP=1 "host=$cluster/sock user=pipe dbname=$1" -c "$2"; }
psql postgres "CREATE DATABASE orders"
psql orders "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
  INSERT INTO orders (item, created_at) VALUES ('tea', now() - interval '3 days'),
  ('cups', now() - interval '2 hours'), ('pot', now() - interval '5 minutes');"

echo "== pipe check"
"$pipe" check

echo "== pipe drill --status (never passed: due, exit 1)"
"$pipe" drill --status || echo "(exit $?)"

echo "== pipe drill --due"
"$pipe" drill --due

echo "== pipe drill --status"
"$pipe" drill --status

echo "== the evidence report's drills section"
"$pipe" evidence | sed -n '/^## Drills/,/^| time/p'
echo "drill: ok"
