#!/usr/bin/env python3
"""One environment of the agents example: a real HTTP service whose deployed release is
whatever was last PUT to /release. GET /version names it; GET /health answers 200 while the
release says healthy=yes and 500 otherwise. Usage: server.py PORT"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"release": b""}


def field(name):
    for line in state["release"].decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key == name:
            return value
    return ""


class Handler(BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = (body + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/version":
            version = field("version")
            self.answer(200 if version else 404, version or "nothing deployed")
        elif self.path == "/health":
            healthy = field("healthy") == "yes"
            self.answer(200 if healthy else 500, "ok" if healthy else "unhealthy")
        else:
            self.answer(404, "not found")

    def do_PUT(self):
        if self.path != "/release":
            return self.answer(404, "not found")
        length = int(self.headers.get("Content-Length", "0"))
        state["release"] = self.rfile.read(length)
        self.answer(200, "deployed " + field("version"))

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
