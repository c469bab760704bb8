#!/bin/sh
# stop.sh [ENV...]
#
# Stops the example service of each named environment (all of them when none is named):
# SIGTERM, then SIGKILL after 5 s. Only a pid recorded by deploy.sh whose process is still our
# service is signalled, so a reused pid is never hit.
set -eu

script_dir=$(cd "$(dirname "$0")" && pwd)
runs=${PIPE_EXAMPLE_RUN_DIR:-$script_dir/../.run}

stop_environment() {
  run_dir=$runs/$1
  pid_file=$run_dir/service.pid
  [ -s "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--pid-file $pid_file"; then
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid"; do
      tries=$((tries + 1))
      if [ $tries -ge 50 ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
    echo "stopped $1 (pid $pid)"
  fi
  rm -f "$pid_file"
}

# A killed process whose parent has not reaped it yet is gone for our purposes.
is_zombie() {
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone)
  [ "$state" = Z ] || [ "$state" = gone ]
}

if [ $# -gt 0 ]; then
  for environment in "$@"; do stop_environment "$environment"; done
elif [ -d "$runs" ]; then
  for run_dir in "$runs"/*/; do
    [ -d "$run_dir" ] || continue
    stop_environment "$(basename "$run_dir")"
  done
fi
