#!/usr/bin/env bash
# The runner's benchmarks (docs/benchmarks.md, "Runner"):
#  1. scheduler overhead: the same generated DAGs (1,000 trivial jobs: wide, chain,
#     10 layers x 100) through `pipe run plan.json`, `ninja -j2` and `make -j2`;
#  2. log throughput: one job writing 200 MB through redaction vs `cat > file`.
# Usage: bench/runner/run.sh            (builds target/release/pipe first)
#        PIPE_BIN=path/to/pipe bench/runner/run.sh
#        RUNS=5 bench/runner/run.sh     (best of N; default 3)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${RUNS:-3}"

if ! command -v ninja >/dev/null 2>&1; then
    (apt-get install -y ninja-build >/dev/null 2>&1 || sudo apt-get install -y ninja-build >/dev/null 2>&1) \
        || { echo "ninja is missing and could not be installed" >&2; exit 1; }
fi
if [ -z "${PIPE_BIN:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    PIPE_BIN="$root/target/release/pipe"
fi
PIPE_BIN="$(cd "$(dirname "$PIPE_BIN")" && pwd)/$(basename "$PIPE_BIN")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Best wall time and best CPU time (user + system, children included) of $runs runs of "$@",
# in seconds, as "WALL CPU"; $reset runs before each. CPU time is the steadier figure on a
# shared machine: it does not grow when other processes compete for the cores.
best_of() {
    local best="" best_cpu=""
    for _ in $(seq "$runs"); do
        eval "$reset"
        /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$@" >/dev/null 2>&1
        read -r elapsed user system < "$work/time.txt"
        local cpu
        cpu=$(echo "$user + $system" | bc -l)
        if [ -z "$best" ] || (( $(echo "$elapsed < $best" | bc -l) )); then best=$elapsed; fi
        if [ -z "$best_cpu" ] || (( $(echo "$cpu < $best_cpu" | bc -l) )); then best_cpu=$cpu; fi
    done
    printf "%.3f %.3f" "$best" "$best_cpu"
}

echo "| shape | pipe run | ninja -j2 | make -j2 | pipe / ninja | pipe / make | CPU: pipe / ninja |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for shape in wide chain layers; do
    dir="$work/$shape"
    mkdir -p "$dir"
    python3 "$here/gen.py" "$shape" "$dir"
    cd "$dir"
    "$PIPE_BIN" compile pipeline.pipe -o plan.json >/dev/null
    reset='rm -rf out .pipe .ninja_log .ninja_deps; mkdir -p out'
    read -r pipe_s pipe_cpu <<< "$(best_of "$PIPE_BIN" run plan.json --jobs 2)"
    read -r ninja_s ninja_cpu <<< "$(best_of ninja -j2)"
    read -r make_s _ <<< "$(best_of make -j2)"
    printf "| %s | %ss | %ss | %ss | %.2f× | %.2f× | %.2f× |\n" "$shape" "$pipe_s" "$ninja_s" "$make_s" \
        "$(echo "$pipe_s / $ninja_s" | bc -l)" "$(echo "$pipe_s / $make_s" | bc -l)" \
        "$(echo "$pipe_cpu / $ninja_cpu" | bc -l)"
done

echo
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
reset='rm -rf .pipe out.txt'
export BENCH_TOKEN="not-in-the-output-0123456789"
read -r pipe_s _ <<< "$(best_of "$PIPE_BIN" run plan.json)"
read -r cat_s _ <<< "$(best_of sh -c "yes '$line' | head -c $bytes | cat > out.txt")"
mb=$(echo "$bytes / 1000000" | bc -l)
echo "| log case (200 MB) | seconds | MB/s |"
echo "| --- | ---: | ---: |"
printf "| pipe run (redacted log file + console to /dev/null) | %s | %.0f |\n" "$pipe_s" "$(echo "$mb / $pipe_s" | bc -l)"
printf '| `yes \| head -c 200M \| cat > file` (baseline) | %s | %.0f |\n' "$cat_s" "$(echo "$mb / $cat_s" | bc -l)"
