"""Plumbing shared by the stand-ins for hosted APIs (GitHub, GitLab): a threaded HTTP(S) server,
a request log, fault injection, and the control routes the tests use.

Faults (POST /_control/faults {"rules": [...]}), each rule:
  method, path (regex), count (how many matching requests it hits), after (matching requests to
  let through first), status with body (JSON) or raw (text), headers, delay (seconds), drop
  (close the connection without an answer).
Request log: GET /_control/requests -> [{method, path, status, time, ...}].
"""

import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.faults = []
        self.log = []
        self.latency = 0.0  # seconds added to every API request (benchmarks)


class Handler(BaseHTTPRequestHandler):
    """Subclasses set `state` and implement api(method, path), error(status, message) and
    control(method, what, body)."""

    protocol_version = "HTTP/1.1"
    state = None
    api_prefix = ""  # stripped from API paths when present

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=None, raw=None):
        data = raw.encode() if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if body is not None and raw is None:
            self.send_header("content-type", "application/json; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        with self.state.lock:
            if self.state.log and self.state.log[-1].get("status") is None:
                self.state.log[-1]["status"] = status

    def body_json(self):
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            return "INVALID"

    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        # Always consume the body, so a faulted reply leaves the keep-alive connection clean.
        n = int(self.headers.get("content-length") or 0)
        self.raw_body = self.rfile.read(n) if n else b""
        path = self.path.split("?")[0]
        if path.startswith("/_control/"):
            return self.control_route(method, path[len("/_control/"):])
        if self.api_prefix and path.startswith(self.api_prefix + "/"):
            path = path[len(self.api_prefix):]
        S = self.state
        if S.latency:
            time.sleep(S.latency)
        with S.lock:
            S.log.append({"method": method, "path": path, "status": None, "time": time.time()})
            fault = None
            for f in S.faults:
                if f["count"] > 0 and f.get("method", method) == method and re.search(f["path"], path):
                    if f.get("after", 0) > 0:
                        f["after"] -= 1
                        continue
                    f["count"] -= 1
                    fault = dict(f)
                    break
        if fault:
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("drop"):
                with S.lock:
                    S.log[-1]["status"] = "drop"
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            if fault.get("status"):
                return self.reply(fault["status"], fault.get("body", {"message": "injected fault"}), fault.get("headers"), fault.get("raw"))
        try:
            self.api(method, path)
        except Exception as e:  # a bug in the stand-in must be visible, not a hang
            self.error(500, f"stand-in error: {e!r}")

    def control_route(self, method, what):
        body = self.body_json() if method == "POST" else None
        S = self.state
        if what == "faults" and method == "POST":
            with S.lock:
                S.faults.extend(body.get("rules", []))
            return self.reply(200, {"ok": True})
        if what == "requests":
            with S.lock:
                return self.reply(200, S.log)
        return self.control(method, what, body)


def serve(handler, state):
    """usage: PROG PORT_FILE [--tls CERT KEY] [--latency-ms N]: listens on 127.0.0.1 (a free port,
    written to PORT_FILE once it listens)."""
    port_file = sys.argv[1]
    if "--latency-ms" in sys.argv:
        state.latency = float(sys.argv[sys.argv.index("--latency-ms") + 1]) / 1000
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()
