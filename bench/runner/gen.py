#!/usr/bin/env python3
"""Generates one DAG shape three ways: pipeline.pipe (for `pipe run`), build.ninja and Makefile.

Usage: gen.py SHAPE DIR   with SHAPE one of wide, chain, layers.
Every node runs one trivial process, `touch out/NAME`, in all three tools.
  wide:   1,000 independent jobs
  chain:  1,000 jobs, each needing the one before
  layers: 10 layers x 100 jobs; a job needs two jobs of the layer before (same index and next)
"""
import os
import sys


def shape(name):
    """[(node, [needs])] in topological order."""
    if name == "wide":
        return [(f"n{i}", []) for i in range(1000)]
    if name == "chain":
        return [(f"n{i}", [f"n{i-1}"] if i else []) for i in range(1000)]
    if name == "layers":
        nodes = []
        for layer in range(10):
            for i in range(100):
                needs = []
                if layer:
                    needs = sorted({f"l{layer-1}_{i}", f"l{layer-1}_{(i + 1) % 100}"})
                nodes.append((f"l{layer}_{i}", needs))
        return nodes
    raise SystemExit(f"unknown shape {name}")


def write(directory, nodes):
    os.makedirs(os.path.join(directory, "out"), exist_ok=True)
    with open(os.path.join(directory, "pipeline.pipe"), "w") as f:
        f.write("pipeline bench {\n")
        for node, needs in nodes:
            after = f"needs = [{', '.join(needs)}]  " if needs else ""
            f.write(f'  job {node} {{ {after}run "touch out/{node}" }}\n')
        f.write("}\n")
    with open(os.path.join(directory, "build.ninja"), "w") as f:
        f.write("rule touch\n  command = touch $out\n\n")
        for node, needs in nodes:
            inputs = " ".join(f"out/{n}" for n in needs)
            f.write(f"build out/{node}: touch {inputs}\n")
    with open(os.path.join(directory, "Makefile"), "w") as f:
        f.write("all: " + " ".join(f"out/{n}" for n, _ in nodes) + "\n\n")
        for node, needs in nodes:
            inputs = " ".join(f"out/{n}" for n in needs)
            f.write(f"out/{node}: {inputs}\n\ttouch $@\n")


if __name__ == "__main__":
    write(sys.argv[2], shape(sys.argv[1]))
