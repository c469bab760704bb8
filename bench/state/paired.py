#!/usr/bin/env python3
"""Paired, interleaved runs of one workload on two state backends: the directory backend
(`--state-dir`) and PostgreSQL (`--state URL`), A B A B …, reporting the median of the per-pair
ratios (and differences) with their min–max and the machine's load. Never best-of-N.

Usage: paired.py --pipe BIN --url POSTGRES_URL --pairs N --workdir DIR
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "runner", "gen.py")

PROMOTE = """pipeline bench {
  artifact app { path = "app.txt" }
  environment staging { url = "http://127.0.0.1:1" }
  job build { run "cp src.txt app.txt"  produces = [app] }
  promote staging {
    after    = [build]
    artifact = app
    deploy { run "true" }
    rollback { run "true" }
  }
}
"""


SINGLE = """pipeline bench {
  job only { run "true" }
}
"""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def timed(argv, cwd):
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed


def workloads(workdir):
    wide = os.path.join(workdir, "wide")
    subprocess.run([sys.executable, GEN, "wide", "1000", "true", wide], check=True)
    promote = os.path.join(workdir, "promote")
    os.makedirs(promote, exist_ok=True)
    with open(os.path.join(promote, "pipeline.pipe"), "w") as f:
        f.write(PROMOTE)
    with open(os.path.join(promote, "src.txt"), "w") as f:
        f.write("v1\n")
    single = os.path.join(workdir, "single")
    os.makedirs(single, exist_ok=True)
    with open(os.path.join(single, "pipeline.pipe"), "w") as f:
        f.write(SINGLE)
    return {
        "1,000-job wide run": wide,
        "one job (the run's fixed cost)": single,
        "one promote (build + deploy)": promote,
    }


def pairs_of(args, directory):
    ratios, diffs, dirs, pgs = [], [], [], []
    for _ in range(args.pairs):
        state_dir = os.path.join(directory, ".bench-state")
        shutil.rmtree(state_dir, ignore_errors=True)
        a = timed([args.pipe, "run", "pipeline.pipe", "--jobs", "2", "--state-dir", state_dir,
                   "--log-format", "json"], directory)
        b = timed([args.pipe, "run", "pipeline.pipe", "--jobs", "2", "--state", args.url,
                   "--log-format", "json"], directory)
        dirs.append(a)
        pgs.append(b)
        ratios.append(b / a)
        diffs.append((b - a) * 1000)
    return ratios, diffs, dirs, pgs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipe", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    print(f"load before: {loadavg()}")
    print()
    print("| workload | directory (median ms) | PostgreSQL (median ms) | PostgreSQL / directory, "
          "median of pairs (min–max) | PostgreSQL − directory, median ms (min–max) |")
    print("| --- | --- | --- | --- | --- |")
    for name, directory in workloads(args.workdir).items():
        ratios, diffs, dirs, pgs = pairs_of(args, directory)
        print(f"| {name} | {statistics.median(dirs) * 1000:.0f} | "
              f"{statistics.median(pgs) * 1000:.0f} | {statistics.median(ratios):.2f}× "
              f"({min(ratios):.2f}–{max(ratios):.2f}) | {statistics.median(diffs):+.0f} "
              f"({min(diffs):+.0f}…{max(diffs):+.0f}) |")
    print()
    print(f"load after: {loadavg()}; {args.pairs} pairs per workload, A = directory, "
          "B = PostgreSQL, alternating. A promote's own state operations are its difference "
          "minus the one-job difference (connecting and checking the schema, paid once per "
          "process).")


if __name__ == "__main__":
    main()
