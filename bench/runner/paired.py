#!/usr/bin/env python3
"""Paired, interleaved runs of pipe, make and ninja on generated DAGs; prints markdown tables.

Each round runs every tool once on the same workload (the order rotates from round to round),
after resetting the workload outside the timing. A cell is the median of the per-round ratios
pipe / make and pipe / ninja, with their min-max: a slow spell of the machine falls on both
sides of a ratio alike. Called by run.sh, which builds the binaries.

Usage: paired.py --pipe BIN --floor BIN [--pairs N] [--sizes 1000,10000]
                 [--shapes wide,chain,diamond,layers] [--commands true,touch] [--jobs 2]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def reset(directory):
    for name in ("out", ".pipe"):
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    for name in (".ninja_log", ".ninja_deps"):
        try:
            os.remove(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    os.mkdir(os.path.join(directory, "out"))


def timed(argv, directory):
    """Wall seconds of one run; the start instant (ns) is returned too, for the stamps."""
    reset(directory)
    start_ns = time.time_ns()
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    end_ns = time.time_ns()
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed in {directory} (exit {done.returncode})")
    return wall, start_ns, end_ns


def generate(args, shape, jobs, command):
    directory = tempfile.mkdtemp(prefix=f"pipe-bench-{shape}-{jobs}-{command.split('/')[-1]}-",
                                 dir=args.workdir)
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), shape, str(jobs), command,
                    directory], check=True)
    subprocess.run([args.pipe, "compile", "pipeline.pipe", "-o", "plan.json"], cwd=directory,
                   check=True, stdout=subprocess.DEVNULL)
    return directory


def tools(args):
    jobs = str(args.jobs)
    return {
        "pipe": [args.pipe, "run", "plan.json", "--jobs", jobs],
        "make": ["make", "-s", "-j" + jobs],
        "ninja": ["ninja", "-j" + jobs],
    }


def rounds(args, directory, extra=None):
    """Per round: {tool: wall seconds} (and extra(tool, start_ns, end_ns, directory) results)."""
    commands = tools(args)
    names = list(commands)
    results = []
    for r in range(args.pairs):
        order = names[r % len(names):] + names[:r % len(names)]
        row = {}
        for name in order:
            wall, start_ns, end_ns = timed(commands[name], directory)
            row[name] = wall
            if extra:
                row[name + "+"] = extra(start_ns, end_ns, directory)
        results.append(row)
    return results


def ratio_cell(results, a, b):
    ratios = [row[a] / row[b] for row in results]
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def median_ms(results, name):
    return f"{statistics.median(row[name] for row in results) * 1000:.0f}"


def floor_seconds(args, jobs, command, directory):
    argv = [args.floor, "floor", str(args.jobs), str(jobs)]
    argv += ["true"] if command == "true" else ["touch", "out/f{}"]
    walls = [timed(argv, directory)[0] for _ in range(args.pairs)]
    return statistics.median(walls)


def scheduler_tables(args):
    print(f"### Scheduler overhead, `--jobs {args.jobs}` / `-j{args.jobs}`\n")
    print("Median of per-round ratios (min–max), "
          f"{args.pairs} interleaved rounds per row; wall medians in ms; "
          "own µs/job = (tool − spawn floor) / jobs.\n")
    print("| jobs | command | shape | pipe ms | make ms | ninja ms | floor ms | pipe / make "
          "| pipe / ninja | pipe µs/job | make µs/job | load before → after |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    medians = {}
    for jobs in args.sizes:
        for command in args.commands:
            for shape in args.shapes:
                directory = generate(args, shape, jobs, command)
                before = loadavg()
                results = rounds(args, directory)
                floor = floor_seconds(args, jobs, command, directory)
                after = loadavg()
                pipe_s = statistics.median(row["pipe"] for row in results)
                make_s = statistics.median(row["make"] for row in results)
                medians[(jobs, command, shape)] = pipe_s
                own = lambda s: (s - floor) / jobs * 1e6
                print(f"| {jobs:,} | `{command}` | {shape} | {median_ms(results, 'pipe')} "
                      f"| {median_ms(results, 'make')} | {median_ms(results, 'ninja')} "
                      f"| {floor * 1000:.0f} | {ratio_cell(results, 'pipe', 'make')} "
                      f"| {ratio_cell(results, 'pipe', 'ninja')} | {own(pipe_s):.0f} "
                      f"| {own(make_s):.0f} | {before} → {after} |", flush=True)
                shutil.rmtree(directory, ignore_errors=True)
    if len(args.sizes) > 1:
        small, large = min(args.sizes), max(args.sizes)
        print(f"\nGrowth {large:,} / {small:,} jobs (pipe, ratio of wall medians):\n")
        print("| command | shape | growth |\n| --- | --- | ---: |")
        for command in args.commands:
            for shape in args.shapes:
                growth = medians[(large, command, shape)] / medians[(small, command, shape)]
                print(f"| `{command}` | {shape} | {growth:.2f}× |")
    print()


def latency_table(args):
    directory = generate(args, "latency", 3, args.floor)

    def stamps(start_ns, end_ns, directory):
        def read(name):
            with open(os.path.join(directory, "out", name)) as f:
                return int(f.read())
        return (read("first") - start_ns) / 1e6, (end_ns - read("last")) / 1e6

    before = loadavg()
    results = rounds(args, directory, stamps)
    after = loadavg()
    print("### A 3-job chain: time to first job, exit latency, total\n")
    print(f"{args.pairs} interleaved rounds; medians in ms (min–max). Time to first job: from "
          "starting the tool to its first job's clock stamp. Exit latency: from the last job's "
          "stamp to the tool's exit (pipe has saved its state and audited the end by then). "
          f"Load {before} → {after}.\n")
    print("| tool | time to first job | exit latency | total | total / make |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("pipe", "make", "ninja"):
        first = [row[name + "+"][0] for row in results]
        exit_ms = [row[name + "+"][1] for row in results]
        total = [row[name] * 1000 for row in results]
        cell = lambda xs: f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"
        print(f"| {name} | {cell(first)} | {cell(exit_ms)} | {cell(total)} "
              f"| {ratio_cell(results, name, 'make')} |")
    print()
    shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipe", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--shapes", default="wide,chain,diamond,layers")
    parser.add_argument("--commands", default="true,touch")
    parser.add_argument("--workdir", default=None, help="where workloads are generated")
    parser.add_argument("--only", choices=["scheduler", "latency"], default=None)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.shapes = args.shapes.split(",")
    args.commands = args.commands.split(",")
    if args.pairs < 7:
        print(f"(only {args.pairs} rounds: fewer than the 7 the published figures use)\n")
    if args.only != "latency":
        scheduler_tables(args)
    if args.only != "scheduler":
        latency_table(args)


if __name__ == "__main__":
    main()
