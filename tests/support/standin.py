"""Plumbing shared by the stand-ins for hosted APIs (GitHub, GitLab): a threaded HTTP(S) server,
a request log, fault injection, and the control routes the tests use.

Faults (POST /_control/faults {"rules": [...]}), each rule:
  method, path (regex), count (how many matching requests it hits), after (matching requests to
  let through first), status with body (JSON) or raw (text), headers, delay (seconds), drop
  (close the connection without an answer), lose_answer (the request is handled, then the
  connection is closed without its answer: the write landed, the client never hears so), raise
  (a message: the handler raises RuntimeError, as a bug in the stand-in would; test-only, to
  prove such bugs are caught).
Request log: GET /_control/requests -> [{method, path, status, time, content_type, user_agent, ...}].

Strictness shared by every stand-in:
  * a request with a body must declare a media type the API accepts (`body_types`); anything
    else is refused with 415 before the handler sees it;
  * a Python exception in a handler is a bug of the STAND-IN, not an upstream fault: it is
    recorded with its traceback (GET /_control/errors; DELETE /_control/errors clears them),
    and the client gets status 599 with a body starting "STAND-IN BUG", a status no real API
    sends, so no test can mistake it for a 500 and pass by retrying it. The Rust harness reads
    /_control/errors when it drops a stand-in and fails the test if there is any.
"""

import json
import os
import re
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.faults = []
        self.log = []
        self.latency = 0.0  # seconds added to every API request (benchmarks)
        self.errors = []  # exceptions raised in handlers: {method, path, error, traceback}


# The status a stand-in answers when its own code raised: outside what real APIs send (and not
# 500, which a client may rightly retry as an upstream fault).
BUG_STATUS = 599


class Handler(BaseHTTPRequestHandler):
    """Subclasses set `state` and implement api(method, path), error(status, message) and
    control(method, what, body)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle holds the body back
    # until the client's delayed ACK (40 ms) on every kept-alive request after the first few.
    disable_nagle_algorithm = True
    state = None
    api_prefix = ""  # stripped from API paths when present
    # Media types (without parameters) a request body may have; others get 415 (`unsupported`).
    body_types = ("application/json",)

    def log_message(self, *args):
        pass

    def setup(self):
        # The TLS handshake runs here, in the connection's own thread: done by accept() (the
        # default), it would serialize every client's handshakes behind one another, a queue
        # real APIs do not have.
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()  # a failure ends this connection (see Server.handle_error)
            self.request.settimeout(None)
        super().setup()

    def reply(self, status, body=None, headers=None, raw=None):
        if getattr(self, "lose_answer", False):
            # The request was handled; its answer is lost on the way back.
            self.replied = True
            with self.state.lock:
                if self.entry is not None and self.entry.get("status") is None:
                    self.entry["status"] = f"lost {status}"
            return self.hang_up()
        data = raw.encode() if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.replied = True
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
            if self.entry is not None and self.entry.get("status") is None:
                self.entry["status"] = status

    def hang_up(self):
        """Closes the connection without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def body_json(self):
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            return "INVALID"

    def media_type(self):
        """The request's Content-Type without parameters (`; charset=utf-8`), lower case, or None."""
        ct = self.headers.get("content-type")
        if ct is None:
            return None
        return ct.split(";", 1)[0].strip().lower()

    def admit(self, method, path):
        """Checks made before the API handler, after faults. Returns False after replying."""
        if self.raw_body and self.media_type() not in self.body_types:
            self.unsupported()
            return False
        return True

    def unsupported(self):
        """415 for a body of a media type the API does not take (subclasses word it as their API)."""
        got = self.headers.get("content-type")
        self.error(415, f"Unsupported Media Type: the body must be {' or '.join(self.body_types)}, got {got!r}")

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
        self.replied = False
        self.lose_answer = False
        self.entry = None  # this request's record in the request log (API requests only)
        try:
            self.dispatch(method)
        except Exception as e:  # a bug in the stand-in: recorded, and answered unmistakably
            self.bug(method, e)

    def bug(self, method, e):
        S = self.state
        record = {"method": method, "path": self.path, "error": repr(e), "traceback": traceback.format_exc()}
        with S.lock:
            S.errors.append(record)
            if self.entry is not None:
                self.entry["status"] = BUG_STATUS
        if self.replied:
            # Part of an answer may be on the wire already: a second one would garble it.
            self.close_connection = True
            return
        self.replied = True
        data = f"STAND-IN BUG (not an upstream fault): {e!r}; see GET /_control/errors\n".encode()
        try:
            self.send_response(BUG_STATUS, "Stand-In Bug")
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass
        self.close_connection = True

    def dispatch(self, method):
        path = self.path.split("?")[0]
        if path.startswith("/_control/"):
            return self.control_route(method, path[len("/_control/"):])
        if self.api_prefix and path.startswith(self.api_prefix + "/"):
            path = path[len(self.api_prefix):]
        S = self.state
        if S.latency:
            time.sleep(S.latency)
        with S.lock:
            self.entry = {
                "method": method, "path": path, "status": None, "time": time.time(),
                "content_type": self.headers.get("content-type"), "user_agent": self.headers.get("user-agent"),
            }
            S.log.append(self.entry)
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
            if fault.get("raise"):
                raise RuntimeError(f"induced by a fault rule: {fault['raise']}")
            if fault.get("drop"):
                with S.lock:
                    self.entry["status"] = "drop"
                return self.hang_up()
            if fault.get("status"):
                return self.reply(fault["status"], fault.get("body", {"message": "injected fault"}), fault.get("headers"), fault.get("raw"))
            if fault.get("lose_answer"):
                self.lose_answer = True
        if not self.admit(method, path):
            return
        self.api(method, path)

    def control_route(self, method, what):
        body = self.body_json() if method == "POST" else None
        S = self.state
        if what == "faults" and method == "POST":
            with S.lock:
                for rule in body.get("rules", []):
                    rule.setdefault("count", 1)
                    S.faults.append(rule)
            return self.reply(200, {"ok": True})
        if what == "requests":
            with S.lock:
                return self.reply(200, S.log)
        if what == "errors" and method == "GET":
            with S.lock:
                return self.reply(200, S.errors)
        if what == "errors" and method == "DELETE":
            with S.lock:
                S.errors.clear()
            return self.reply(200, {"ok": True})
        return self.control(method, what, body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # A listen backlog as deep as a client's burst of new connections: socketserver's 5 drops
    # the SYNs of a burst of 32, which then wait for the kernel to retry them.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that went away or refused our certificate (as tests of TLS settings make it
        # do) is not an error of the stand-in; anything else is printed as socketserver does.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(handler, state):
    """usage: PROG PORT_FILE [--tls CERT KEY] [--latency-ms N]: listens on 127.0.0.1 (a free port,
    written to PORT_FILE once it listens)."""
    port_file = sys.argv[1]
    if "--latency-ms" in sys.argv:
        state.latency = float(sys.argv[sys.argv.index("--latency-ms") + 1]) / 1000
    server = Server(("127.0.0.1", 0), handler)
    server.tls = "--tls" in sys.argv
    if server.tls:
        i = sys.argv.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()
