#!/usr/bin/env python3
"""Measures how long `pipe lsp` takes to publish diagnostics after an edit of a large file.

Usage: latency.py PIPE_BINARY [SHAPE] [EDITS]
Generates the 1,000-job pipeline of bench/runner/gen.py (SHAPE: layers, wide or chain; default
layers), opens it, then sends EDITS ranged edits (default 30), alternately breaking and fixing
one job's `needs` (or, in `wide`, editing one command), and times each from the didChange to its publishDiagnostics.
Prints the median, 95th percentile and maximum in milliseconds, and the server's CPU time per
edit (from /proc), which does not count waiting for a core on a loaded machine.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def send(proc, message):
    body = json.dumps(message).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()


def receive(proc):
    length = 0
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the server exited")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(proc.stdout.read(length))


def cpu_ms(proc):
    """The server's user + system CPU time so far: on a busy machine the wall clock measures
    the queue for a core as much as the server."""
    fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def wait_for(proc, predicate):
    while True:
        message = receive(proc)
        if predicate(message):
            return message


def main():
    binary = sys.argv[1]
    shape = sys.argv[2] if len(sys.argv) > 2 else "layers"
    edits = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([sys.executable, os.path.join(HERE, "../runner/gen.py"), shape, "1000", "true", directory], check=True)
        path = os.path.join(directory, "pipeline.pipe")
        text = open(path).read()
        uri = "file://" + path
        proc = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        send(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
        wait_for(proc, lambda m: m.get("id") == 1)
        send(proc, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        is_diagnostics = lambda m: m.get("method") == "textDocument/publishDiagnostics"
        started = time.perf_counter()
        send(proc, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "pipe", "version": 1, "text": text}}})
        wait_for(proc, is_diagnostics)
        opened = (time.perf_counter() - started) * 1000
        # The last line with a `needs = [` (its first name is mistyped, then fixed), or in the
        # `wide` shape, which has none, the last job's command.
        lines = text.split("\n")
        anchor = "needs = [" if "needs = [" in text else 'run "'
        line = max(i for i, l in enumerate(lines) if anchor in l)
        column = lines[line].index(anchor) + len(anchor)
        timings, counts = [], []
        cpu_before = cpu_ms(proc)
        for n in range(edits):
            broken = n % 2 == 0
            start = {"line": line, "character": column}
            end = {"line": line, "character": column + (0 if broken else 1)}
            change = {"range": {"start": start, "end": end}, "text": "x" if broken else ""}
            started = time.perf_counter()
            send(proc, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": n + 2}, "contentChanges": [change]}})
            message = wait_for(proc, is_diagnostics)
            timings.append((time.perf_counter() - started) * 1000)
            counts.append(len(message["params"]["diagnostics"]))
        cpu = (cpu_ms(proc) - cpu_before) / edits
        send(proc, {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
        wait_for(proc, lambda m: m.get("id") == 2)
        send(proc, {"jsonrpc": "2.0", "method": "exit", "params": None})
        proc.wait(timeout=10)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(f"{shape}: {len(text.splitlines())} lines; open {opened:.1f} ms; "
          f"{edits} edits: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
          f"max {timings[-1]:.1f} ms; server CPU {cpu:.1f} ms per edit; "
          f"diagnostics per edit {sorted(set(counts))}; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
