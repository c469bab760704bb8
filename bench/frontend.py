#!/usr/bin/env python3
"""Front-end benchmark: generates pipelines of 1k, 10k and 100k jobs with random `needs`
edges (seeded, so every run measures the same files), then times `pipe check` and
`pipe compile` (best of N wall-clock runs) and reads their peak memory (max RSS).

Usage: python3 bench/frontend.py [--runs 3] [--sizes 1000,10000,100000]
Builds the release binary first. Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import os
import random
import resource
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


def measure(args, runs):
    """Best wall-clock time over `runs` runs."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args)} failed: {proc.stderr.decode()[:500]}")
        best = min(best, elapsed)
    return best


def peak_rss(args):
    """Peak RSS of one run, isolated in a fresh Python child so earlier runs do not mask it."""
    code = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    opts = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    sizes = [int(s) for s in opts.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = os.path.join(tmp, f"bench{size}.pipe")
            with open(path, "w") as f:
                f.write(generate(size))
            mb = os.path.getsize(path) / 1e6
            check = measure([BINARY, "check", path], opts.runs)
            compile_ = measure([BINARY, "compile", path, "-o", os.path.join(tmp, "plan.json")], opts.runs)
            rss_check = peak_rss([BINARY, "check", path]) / 1024
            rss_compile = peak_rss([BINARY, "compile", path, "-o", os.path.join(tmp, "plan.json")]) / 1024
            rows.append((size, mb, check, compile_, rss_check, rss_compile))
            print(f"{size} jobs: check {check*1000:.0f} ms, compile {compile_*1000:.0f} ms, "
                  f"peak {max(rss_check, rss_compile):.0f} MB", file=sys.stderr)
    print("| jobs | file | `pipe check` | `pipe compile` | peak RSS check / compile |")
    print("|---:|---:|---:|---:|---:|")
    for size, mb, check, compile_, rss_c, rss_k in rows:
        print(f"| {size:,} | {mb:.1f} MB | {check*1000:.0f} ms | {compile_*1000:.0f} ms | "
              f"{rss_c:.0f} / {rss_k:.0f} MB |")
    by_size = {r[0]: r for r in rows}
    if 10000 in by_size and 100000 in by_size:
        ratio = by_size[100000][3] / by_size[10000][3]
        print(f"\nGrowth 10k → 100k (compile): {ratio:.1f}× for 10× the jobs (target ≤ 12×).")


if __name__ == "__main__":
    main()
