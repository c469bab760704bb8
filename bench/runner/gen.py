#!/usr/bin/env python3
"""Generates one DAG three ways: pipeline.pipe (for `pipe run`), build.ninja and Makefile.

Usage: gen.py SHAPE JOBS COMMAND DIR
  SHAPE    wide     JOBS independent jobs
           chain    each job needs the one before
           diamond  10 diamonds in a row: a fan-out of JOBS/10 - 1 jobs that all need the
                    previous diamond's join, then a join that needs them all ("10 x 100" at 1,000)
           layers   10 layers of JOBS/10; a job needs two jobs of the layer before
           latency  3 jobs in a chain (JOBS is ignored): the first and the last write the wall
                    clock to out/first and out/last with `STAMP stamp FILE`
  COMMAND  true     every job runs `true`
           touch    every job runs `touch out/NAME`
           STAMP    (latency only) the path of the floor helper that writes the stamps
Every job runs one process, with no shell syntax, in all three tools.
"""
import os
import sys


def shape(name, jobs):
    """[(node, [needs])] in topological order."""
    if name == "wide":
        return [(f"n{i}", []) for i in range(jobs)]
    if name == "chain":
        return [(f"n{i}", [f"n{i-1}"] if i else []) for i in range(jobs)]
    if name == "diamond":
        nodes, join, width = [], None, jobs // 10 - 1
        for d in range(10):
            fan = [(f"d{d}_{i}", [join] if join else []) for i in range(width)]
            nodes.extend(fan)
            join = f"d{d}_join"
            nodes.append((join, sorted(n for n, _ in fan)))
        return nodes
    if name == "layers":
        width, nodes = jobs // 10, []
        for layer in range(10):
            for i in range(width):
                needs = []
                if layer:
                    needs = sorted({f"l{layer-1}_{i}", f"l{layer-1}_{(i + 1) % width}"})
                nodes.append((f"l{layer}_{i}", needs))
        return nodes
    if name == "latency":
        return [("first", []), ("middle", ["first"]), ("last", ["middle"])]
    raise SystemExit(f"unknown shape {name}")


def command_of(node, command, shape_name):
    if shape_name == "latency" and node in ("first", "last"):
        return f"{command} stamp out/{node}"
    return "true" if command in ("true",) or shape_name == "latency" else f"touch out/{node}"


def write(directory, shape_name, nodes, command):
    os.makedirs(os.path.join(directory, "out"), exist_ok=True)
    with open(os.path.join(directory, "pipeline.pipe"), "w") as f:
        f.write("pipeline bench {\n")
        for node, needs in nodes:
            after = f"needs = [{', '.join(needs)}]  " if needs else ""
            f.write(f'  job {node} {{ {after}run "{command_of(node, command, shape_name)}" }}\n')
        f.write("}\n")
    # ninja and make name each node by its output file; with `true` nothing creates it, so
    # every node runs (once) in every tool.
    with open(os.path.join(directory, "build.ninja"), "w") as f:
        f.write("rule run\n  command = $cmd\n\n")
        for node, needs in nodes:
            inputs = " ".join(f"out/{n}" for n in needs)
            f.write(f"build out/{node}: run {inputs}\n  cmd = {command_of(node, command, shape_name)}\n")
    with open(os.path.join(directory, "Makefile"), "w") as f:
        targets = " ".join(f"out/{n}" for n, _ in nodes)
        f.write(f"all: {targets}\n.PHONY: all {targets}\n\n")
        for node, needs in nodes:
            inputs = " ".join(f"out/{n}" for n in needs)
            f.write(f"out/{node}: {inputs}\n\t{command_of(node, command, shape_name)}\n")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    shape_name, jobs, command, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    write(directory, shape_name, shape(shape_name, jobs), command)
