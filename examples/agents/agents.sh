#!/usr/bin/env bash
# One delivery, three agents. Starts a throwaway PostgreSQL 15 (the shared state) and a
# SeaweedFS S3 server (the shared artifact store) on loopback, two real HTTP services
# (staging, production), then runs the delivery as three separate `pipe` processes, each in its
# own fresh working directory with no shared files: only PIPE_STATE and PIPE_ARTIFACTS join them.
#
#   release 1 (good): agent A builds, agent B promotes to staging, agent C records the
#                     approval, agent B promotes to production.
#   release 2 (bad):  agent C builds an unhealthy release, agent A promotes it to staging, the
#                     watch catches it, and agent A rolls staging back to release 1, which
#                     agent A's predecessor built, fetched from S3 by digest and re-verified.
#
# Exits 0 only when every step ends the way it must. Needs Debian's postgresql-15
# (.ci/install-postgres.sh) and SeaweedFS's `weed` (.ci/install-seaweedfs.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pg_bin="${PIPE_PG_BIN:-/usr/lib/postgresql/15/bin}"
work="$(mktemp -d /tmp/pipe-agents.XXXXXX)"
chmod 755 "$work"

pipe="${PIPE_BIN:-}"   # a pipe binary to use instead of building one
if [ -z "$pipe" ]; then
  echo "== building pipe (cargo build --release)"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  pipe="$root/target/release/pipe"
fi
weed="${PIPE_WEED:-$(command -v weed || true)}"
[ -n "$weed" ] || weed="$root/.ci/venv/bin/weed"
[ -x "$weed" ] || { echo "agents: no weed binary (run .ci/install-seaweedfs.sh)" >&2; exit 2; }

pids=()
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  # SeaweedFS takes seconds to stop on SIGTERM; nothing of it needs keeping.
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_server "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== shared state: PostgreSQL 15 on a unix socket in $work/pg"
mkdir -p "$work/pg/data" "$work/pg/sock"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/pg" "$work/pg/data" "$work/pg/sock"; fi
as_server "$pg_bin/initdb" -D "$work/pg/data" -A trust -U pipe -E UTF8 >/dev/null
as_server "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/data/server.log" -w \
  -o "-k $work/pg/sock -c listen_addresses=''" start >/dev/null
export PIPE_STATE="postgresql:///postgres?host=$work/pg/sock&user=pipe&schema=agents"

echo "== shared artifacts: SeaweedFS S3 on 127.0.0.1:18333"
mkdir -p "$work/s3"
"$weed" server -dir="$work/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3 -s3.port=18333 \
  -master.port=19333 -volume.port=18444 -filer.port=18888 -volume.max=5 \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  >"$work/s3/weed.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  curl -fsS -X PUT http://127.0.0.1:18333/pipe-agents >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS http://127.0.0.1:18333/pipe-agents >/dev/null || { cat "$work/s3/weed.log" >&2; exit 2; }
export AWS_ENDPOINT_URL=http://127.0.0.1:18333 AWS_ACCESS_KEY_ID=any AWS_SECRET_ACCESS_KEY=any
export AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
export PIPE_ARTIFACTS=s3://pipe-agents/artifacts

echo "== the environments: staging on :18090, production on :18091"
python3 "$here/server.py" 18090 & pids+=($!)
python3 "$here/server.py" 18091 & pids+=($!)
for port in 18090 18091; do
  for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done

# A fresh, private working directory for one agent invocation: the pipeline and its build
# script, nothing else. No .pipe/ is ever shared.
agent() {
  local name="$1"; shift
  local dir="$work/agent-$name-$RANDOM"
  mkdir -p "$dir" && cp "$here/pipeline.pipe" "$here/build.sh" "$dir/"
  echo "-- agent $name: pipe $*" >&2
  (cd "$dir" && "$pipe" "$@")
}
expect() { # expect CODE AGENT ARGS…: run and insist on the exit code
  local want="$1"; shift
  set +e; agent "$@"; local got=$?; set -e
  if [ "$got" -ne "$want" ]; then echo "agents: expected exit $want, got $got" >&2; exit 1; fi
}
serving() { curl -fsS "http://127.0.0.1:$1/version"; }

echo "== release 1 (good)"
expect 0 A run --run-id r1 --until built
expect 0 B run --run-id r1 --only staging.deploy
expect 3 B run --run-id r1 --only production.approval
expect 0 C approve r1 production --approver alice --source agents-example
expect 0 B resume r1
good="$(serving 18091)"
[ "$good" = "$(serving 18090)" ] || { echo "agents: staging and production differ" >&2; exit 1; }
echo "staging and production serve $good"

echo "== release 2 (bad): built by agent C, promoted and rolled back by agent A"
AGENTS_BAD=1 expect 0 C run --run-id r2 --until built
expect 1 A run --run-id r2 --only staging.deploy
now="$(serving 18090)"
[ "$now" = "$good" ] || { echo "agents: staging serves $now, expected $good" >&2; exit 1; }
echo "staging was rolled back by agent A to $now (built by agent A in run r1)"

echo "== what every agent sees: the ledger, the audit chain, the evidence"
agent C releases staging
agent C audit verify
agent C evidence | sed -n '/^## Releases/,/^## /p'
echo "agents: ok"
