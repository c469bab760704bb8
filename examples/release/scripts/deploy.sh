#!/bin/sh
# deploy.sh ARTIFACT_PATH PORT_OR_URL [--weight N]
#
# (Re)deploys the example service for one environment: stops the instance this environment
# runs, copies the artifact into the environment's run directory, starts it detached on the
# environment's loopback port, and waits until /health answers. Idempotent, and the same
# command rolls back (pass the previous artifact's path).
#
# The environment's name comes from $PIPE_ENVIRONMENT (set by pipe in promote steps), else
# from the port. Its state (pid file, log, deployed copy) lives in
# $PIPE_EXAMPLE_RUN_DIR/ENV (default: examples/release/.run/ENV).
set -eu

usage() { echo "usage: deploy.sh ARTIFACT_PATH PORT_OR_URL [--weight N]" >&2; exit 2; }
[ $# -ge 2 ] || usage
artifact=$1
target=$2
shift 2
weight=100
while [ $# -gt 0 ]; do
  case $1 in
    --weight) [ $# -ge 2 ] || usage; weight=$2; shift 2 ;;
    *) usage ;;
  esac
done

# Accept 18080, 127.0.0.1:18080 or http://127.0.0.1:18080[/...].
port=${target#*://}
port=${port%%/*}
port=${port##*:}
case $port in
  ''|*[!0-9]*) echo "deploy.sh: cannot find a port in '$target'" >&2; exit 2 ;;
esac
[ -f "$artifact" ] || { echo "deploy.sh: no artifact at $artifact" >&2; exit 1; }

script_dir=$(cd "$(dirname "$0")" && pwd)
environment=${PIPE_ENVIRONMENT:-port-$port}
run_dir=${PIPE_EXAMPLE_RUN_DIR:-$script_dir/../.run}/$environment
mkdir -p "$run_dir"

"$script_dir/stop.sh" "$environment"

# A private, executable copy: the stored artifact stays untouched (and may be read-only).
cp "$artifact" "$run_dir/service.new"
chmod 755 "$run_dir/service.new"
mv -f "$run_dir/service.new" "$run_dir/service"
printf '%s\n' "$artifact" > "$run_dir/artifact"
rm -f "$run_dir/service.pid"

# setsid: its own session and process group, so it outlives this step and the runner's
# process-group cleanup; every descriptor redirected, so the step's output pipe closes.
setsid "$run_dir/service" --listen "127.0.0.1:$port" --pid-file "$run_dir/service.pid" \
  >>"$run_dir/service.log" 2>&1 </dev/null &

# Wait (up to ~5 s) for the pid file and a healthy answer from *this* instance.
tries=0
until [ -s "$run_dir/service.pid" ] && curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null; do
  tries=$((tries + 1))
  if [ $tries -ge 50 ]; then
    echo "deploy.sh: the service did not become healthy on port $port; its log:" >&2
    tail -n 20 "$run_dir/service.log" >&2
    exit 1
  fi
  sleep 0.1
done
pid=$(cat "$run_dir/service.pid")
kill -0 "$pid" 2>/dev/null || { echo "deploy.sh: the service exited; see $run_dir/service.log" >&2; exit 1; }

version=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/version")
echo "deployed $version to $environment at http://127.0.0.1:$port (pid $pid, weight $weight%, from $artifact)"
if [ "$weight" != 100 ]; then
  echo "note: this example runs one instance per environment; the weight is recorded, not applied"
fi
