#!/usr/bin/env python3
"""Front-end benchmark: generates pipelines of 1k, 10k and 100k jobs with random `needs`
edges (seeded, so every run measures the same files), then times `pipe check` and
`pipe compile` and reads their peak memory (max RSS).

Runs are interleaved: each round runs every size once, so a slow or fast spell of the machine
falls on all sizes alike instead of on whichever size happened to be running. Each cell shows
the median of the rounds and, in brackets, the best; the growth ratio is computed from the
medians (the best of N flatters whichever size got the luckiest run).

Usage: python3 bench/frontend.py [--runs 7] [--sizes 1000,10000,100000]
Builds the release binary first. Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "pipe")


def generate(jobs: int, seed: int = 42) -> str:
    """A pipeline of `jobs` jobs; each needs up to 3 random earlier jobs (so it is a DAG)."""
    rng = random.Random(seed)
    lines = ["pipeline bench {", '  env { LANG = "C" }']
    for i in range(jobs):
        needs = sorted({f"j{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        need_text = f"  needs = [{', '.join(needs)}]" if needs else ""
        lines.append(f'  job j{i} {{ run "echo {i} > /dev/null"{need_text}  timeout = 1m }}')
    lines.append("  gate done { require jobs.j0.succeeded }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def timed(args):
    """Wall-clock seconds of one run; exits on failure."""
    start = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {proc.stderr.decode()[:500]}")
    return elapsed


def peak_rss(args):
    """Peak RSS of one run, isolated in a fresh Python child so earlier runs do not mask it."""
    code = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def cell(times):
    return f"{statistics.median(times)*1000:,.0f} ms ({min(times)*1000:,.0f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="1000,10000,100000")
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    sizes = [int(s) for s in opts.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        paths, plan = {}, os.path.join(tmp, "plan.json")
        for size in sizes:
            paths[size] = os.path.join(tmp, f"bench{size}.pipe")
            with open(paths[size], "w") as f:
                f.write(generate(size))
        commands = {size: {"check": [BINARY, "check", paths[size]],
                           "compile": [BINARY, "compile", paths[size], "-o", plan]}
                    for size in sizes}
        times = {size: {"check": [], "compile": []} for size in sizes}
        for _ in range(opts.runs):
            for size in sizes:
                for what, args in commands[size].items():
                    times[size][what].append(timed(args))
        rss = {size: [peak_rss(args) / 1024 for args in commands[size].values()] for size in sizes}
        mb = {size: os.path.getsize(paths[size]) / 1e6 for size in sizes}
    print(f"| jobs | file | `pipe check` | `pipe compile` | peak RSS check / compile |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        print(f"| {size:,} | {mb[size]:.1f} MB | {cell(times[size]['check'])} | "
              f"{cell(times[size]['compile'])} | {rss[size][0]:.0f} / {rss[size][1]:.0f} MB |")
    if 10000 in times and 100000 in times:
        for what in ("check", "compile"):
            median = statistics.median(times[100000][what]) / statistics.median(times[10000][what])
            best = min(times[100000][what]) / min(times[10000][what])
            print(f"\nGrowth 10k → 100k ({what}): {median:.1f}× from medians, {best:.1f}× from "
                  f"bests, for 10× the jobs (target ≤ 12×).")


if __name__ == "__main__":
    main()
