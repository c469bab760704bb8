#!/usr/bin/env bash
# The runner's benchmarks (docs/benchmarks.md, "Runner"), as paired, interleaved runs:
#  1. scheduler overhead: pipe run / make / ninja on generated DAGs of `true` and of
#     `touch out/NAME` (wide, chain, 10-diamond, 10 layers; 1,000 and 10,000 jobs), with the
#     spawn floor (bench/runner/floor.rs, a bare spawn loop) for each tool's own µs per job;
#  2. a 3-job chain: time to first job, exit latency and total against make and ninja;
#  3. log throughput: one job writing 200 MB through redaction vs `cat > file`.
# Usage: bench/runner/run.sh                  (builds target/release/pipe first)
#        PIPE_BIN=path/to/pipe bench/runner/run.sh
#        PAIRS=15 SIZES=1000 bench/runner/run.sh   (rounds per cell, default 7; sizes)
#        SHAPES=wide,chain COMMANDS=true bench/runner/run.sh
#        BENCH_DIR=/dev/shm bench/runner/run.sh    (where workloads live; default $TMPDIR)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pairs="${PAIRS:-7}"

extra_path="$("$here/install-ninja.sh")" || { echo "ninja is missing and could not be installed" >&2; exit 1; }
[ -n "$extra_path" ] && export PATH="$extra_path:$PATH"
command -v make >/dev/null || { echo "make is missing" >&2; exit 1; }
if [ -z "${PIPE_BIN:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    PIPE_BIN="$root/target/release/pipe"
fi
PIPE_BIN="$(cd "$(dirname "$PIPE_BIN")" && pwd)/$(basename "$PIPE_BIN")"

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/pipe-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rustc -O -o "$work/floor" "$here/floor.rs"

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(uname -sr), workloads on $(df -T "$work" | awk 'NR==2 {print $2}')," \
    "$(make --version | head -1), ninja $(ninja --version), $(date -u +%Y-%m-%dT%H:%MZ)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$here/paired.py" --pipe "$PIPE_BIN" --floor "$work/floor" --pairs "$pairs" \
    --sizes "${SIZES:-1000,10000}" --shapes "${SHAPES:-wide,chain,diamond,layers}" \
    --commands "${COMMANDS:-true,touch}" --workdir "$work"

# Log throughput: median of $pairs interleaved runs of each.
dir="$work/log"
mkdir -p "$dir"
cd "$dir"
bytes=200000000
line='pipe log throughput benchmark line with some words to redact maybe 0123456789 abcdef'
cat > pipeline.pipe <<PIPE
pipeline logs {
  secret token { from = env("BENCH_TOKEN") }
  job spew { secrets = [token]  run "yes '$line' | head -c $bytes" }
}
PIPE
"$PIPE_BIN" compile pipeline.pipe -o plan.json >/dev/null
export BENCH_TOKEN="not-in-the-output-0123456789"
seconds() { /usr/bin/env python3 -c 'import subprocess,sys,time; t=time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); print(time.perf_counter()-t)' "$@"; }
pipe_times=() cat_times=()
for _ in $(seq "$pairs"); do
    rm -rf .pipe out.txt
    pipe_times+=("$(seconds "$PIPE_BIN" run plan.json)")
    cat_times+=("$(seconds sh -c "yes '$line' | head -c $bytes | cat > out.txt")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pipe_s="$(median "${pipe_times[@]}")" cat_s="$(median "${cat_times[@]}")"
mb=$((bytes / 1000000))
echo "### Log throughput (200 MB, median of $pairs interleaved runs; load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| log case | seconds | MB/s |"
echo "| --- | ---: | ---: |"
awk -v s="$pipe_s" -v mb="$mb" 'BEGIN {printf "| pipe run (redacted log file + console to /dev/null) | %.3f | %.0f |\n", s, mb / s}'
awk -v s="$cat_s" -v mb="$mb" 'BEGIN {printf "| `yes \\| head -c 200M \\| cat > file` (baseline) | %.3f | %.0f |\n", s, mb / s}'
