"""A fault-injecting reverse proxy for the end-to-end tests (stdlib only).

usage: python fault_proxy.py PORT_FILE UPSTREAM_BASE_URL

Listens on 127.0.0.1 (a free port the kernel picks, written to PORT_FILE once it listens) and
forwards every request -- method, path (appended to the upstream base URL's path), query, headers
except hop-by-hop ones, body -- to the upstream, relaying its answer, unless a fault rule matches.
Host is set to the upstream's (as nginx's default `proxy_set_header Host $proxy_host`). One fresh
upstream connection per request; the client's connection is kept alive (HTTP/1.1) unless a fault
closes it or the client asked for `Connection: close`. Bodies in both directions are read whole
and re-sent with an exact Content-Length (chunked request bodies are decoded).

Why it exists: the dangerous fault is the LOST RESPONSE AFTER THE UPSTREAM ACTED (the token
endpoint rotated the refresh token, then the answer was lost). Only a proxy that forwards and then
drops or garbles the answer reproduces it: `{"when": "after", "drop": true}`.

Control routes (never forwarded):
  POST   /_proxy/faults {"rules": [RULE, ...]}  adds rules (400 with the reason for a bad rule)
  GET    /_proxy/faults                         the rules, with what is left of count / after
  DELETE /_proxy/faults                         removes every rule
  GET    /_proxy/requests                       the request log (below); DELETE clears it
  GET    /_proxy/issued                         token values in the upstream's answers (test-only: for
                                                leak searches; never logged elsewhere)
  GET    /_proxy/errors                         exceptions raised in the proxy's own code (its
                                                bugs); DELETE clears them

A RULE:
  method    HTTP method to match (any when absent)
  path      regex, searched in the request path (without the query); required
  count     how many matching requests it hits (default 1)
  after     how many matching requests to let through untouched first (default 0)
  when      "before" (default): act instead of forwarding, the upstream never sees the request;
            "after": forward, let the upstream act and answer, then act on that answer
  and its actions, at most one of the first four:
  status    answer this status, with `body` (JSON) or `raw` (text) and `headers` (with
            "after" the upstream's answer is replaced)
  drop      true: close the connection without any answer
  oversize  true (2 MiB) or a size in bytes: answer (status `status`, default 200) a JSON token
            response -- `body` or {"access_token": "oversize", "token_type": "Bearer"} -- padded
            with a "padding" member to exactly that size, with a correct Content-Length
  redirect  answer 302 (or `status`) with Location: the rule's `location` (another origin)
  truncate  N: send the answer's status and headers with its ORIGINAL Content-Length but only
            its first N bytes of body, then close the connection (the client sees a truncated
            body). The answer is the upstream's ("after") or the rule's `status`/`oversize` one.
            N must be smaller than the body: a truncation that cuts nothing is recorded as an
            error (the test would prove nothing)
  delay     seconds to wait before answering (combines with the others): "before" waits, then
            acts, or forwards when the rule has no other action (a slow way in; the upstream
            sees the request late, whether or not the client is still waiting); "after" forwards
            at once and waits once the upstream has answered (the upstream acted, the client
            times out). Used to make the client time out
  raise     a message: the proxy raises RuntimeError, as a bug in it would (test-only, to prove
            such bugs are caught)

Request log entries (GET /_proxy/requests), in arrival order:
  {method, path, query_fields, time, forwarded, upstream_status, upstream_error, fault, answer,
   form_fields, json_fields}
  forwarded: whether the upstream got the request; upstream_status: its status (null if not
  forwarded or unreachable); fault: {"rule": index, "when", "actions": [...]} or null; answer:
  what the client got -- a status, "drop", "truncated", or "client-gone" (writing failed);
  form_fields / json_fields / query_fields: the NAMES of the request's form body fields, JSON
  body members and query parameters -- never their values (they carry tokens).

Loud bugs: an exception in the proxy's own code is recorded with its traceback (GET
/_proxy/errors) and the client gets status 599 with a body starting "FAULT PROXY BUG" (a status
no real server sends, so no test can mistake it for an upstream 5xx and pass by retrying). The
Rust harness fails the test when the proxy recorded any.
"""

import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUG_STATUS = 599
UPSTREAM_TIMEOUT = 60
OVERSIZE_DEFAULT = 2 * 1024 * 1024
# RFC 9110 7.6.1 hop-by-hop fields, and the ones this proxy recomputes (content-length, host).
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade",
}
RULE_KEYS = {
    "method", "path", "count", "after", "when", "status", "body", "raw", "headers", "drop",
    "delay", "truncate", "oversize", "redirect", "location", "raise",
}


class ClientGone(Exception):
    """The client closed its connection while the proxy was answering (not a proxy bug)."""


class State:
    def __init__(self, upstream):
        self.lock = threading.RLock()
        self.rules = []
        self.log = []
        self.errors = []
        self.upstream = upstream
        # Token values the upstream answered with (test-only: the leak searches look for them).
        self.issued = []


def validate_rule(r, index):
    """Returns the normalized rule, or raises ValueError with the reason."""
    if not isinstance(r, dict):
        raise ValueError(f"rule {index} is not an object")
    unknown = set(r) - RULE_KEYS
    if unknown:
        raise ValueError(f"rule {index}: unknown key(s) {sorted(unknown)}; known: {sorted(RULE_KEYS)}")
    if not isinstance(r.get("path"), str):
        raise ValueError(f"rule {index}: `path` (a regex) is required")
    try:
        re.compile(r["path"])
    except re.error as e:
        raise ValueError(f"rule {index}: bad `path` regex: {e}")
    rule = dict(r)
    rule.setdefault("count", 1)
    rule.setdefault("after", 0)
    rule.setdefault("when", "before")
    if rule["when"] not in ("before", "after"):
        raise ValueError(f"rule {index}: `when` must be \"before\" or \"after\"")
    for k in ("count", "after"):
        if not isinstance(rule[k], int) or isinstance(rule[k], bool) or rule[k] < 0:
            raise ValueError(f"rule {index}: `{k}` must be a non-negative integer")
    if "method" in rule:
        rule["method"] = str(rule["method"]).upper()
    answers = [k for k in ("status", "drop", "oversize", "redirect") if rule.get(k) not in (None, False)]
    if rule.get("oversize") not in (None, False) or rule.get("redirect") not in (None, False):
        # status is only a parameter of these two
        answers = [a for a in answers if a != "status"]
    if len(answers) > 1:
        raise ValueError(f"rule {index}: at most one of status / drop / oversize / redirect, got {answers}")
    if "status" in rule and not (isinstance(rule["status"], int) and 100 <= rule["status"] <= 999):
        raise ValueError(f"rule {index}: `status` must be an HTTP status code")
    if "body" in rule and "raw" in rule:
        raise ValueError(f"rule {index}: `body` (JSON) or `raw` (text), not both")
    if "raw" in rule and not isinstance(rule["raw"], str):
        raise ValueError(f"rule {index}: `raw` must be a string")
    if "headers" in rule and not isinstance(rule["headers"], dict):
        raise ValueError(f"rule {index}: `headers` must be an object")
    if rule.get("redirect") not in (None, False) and not isinstance(rule.get("location"), str):
        raise ValueError(f"rule {index}: `redirect` needs a `location`")
    if "truncate" in rule:
        t = rule["truncate"]
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise ValueError(f"rule {index}: `truncate` must be a byte count")
        if answers and answers[0] in ("drop", "redirect"):
            raise ValueError(f"rule {index}: `truncate` cannot apply to {answers[0]}")
        if rule["when"] == "before" and not answers:
            raise ValueError(f"rule {index}: `truncate` with when=before needs an answer (`status` or `oversize`)")
    if "oversize" in rule and rule["oversize"] not in (None, False):
        o = rule["oversize"]
        if not (o is True or (isinstance(o, int) and o > 0)):
            raise ValueError(f"rule {index}: `oversize` must be true or a size in bytes")
    if "delay" in rule:
        if not isinstance(rule["delay"], (int, float)) or isinstance(rule["delay"], bool) or rule["delay"] < 0:
            raise ValueError(f"rule {index}: `delay` must be a number of seconds")
    if not (answers or "truncate" in rule or rule.get("delay") or rule.get("raise")):
        raise ValueError(f"rule {index}: the rule does nothing (no status/drop/oversize/redirect/truncate/delay/raise)")
    return rule


def actions_of(rule):
    return [k for k in ("status", "drop", "oversize", "redirect", "truncate", "delay", "raise")
            if rule.get(k) not in (None, False)]


def field_names(content_type, body):
    """(form field names, JSON member names) of a request body: names only, never values."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    form, members = None, None
    if ct == "application/x-www-form-urlencoded":
        try:
            form = [k for k, _ in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)]
        except ValueError:
            form = ["<unparseable>"]
    elif ct == "application/json" or ct.endswith("+json"):
        try:
            doc = json.loads(body)
            members = sorted(doc) if isinstance(doc, dict) else []
        except ValueError:
            members = ["<unparseable>"]
    return form, members


def oversize_body(rule):
    size = OVERSIZE_DEFAULT if rule["oversize"] is True else rule["oversize"]
    base = dict(rule.get("body") or {"access_token": "oversize", "token_type": "Bearer"})
    base["padding"] = ""
    empty = len(json.dumps(base).encode())
    if size < empty:
        raise ValueError(f"oversize {size} is smaller than the body without padding ({empty} bytes)")
    base["padding"] = "x" * (size - empty)
    data = json.dumps(base).encode()
    assert len(data) == size, (len(data), size)
    return data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle holds the body back
    # until the client's delayed ACK (40 ms) on every kept-alive request after the first few.
    disable_nagle_algorithm = True
    state = None  # set by main
    server_version = "fault-proxy"

    def log_message(self, *args):
        pass

    # Every method goes through route() (BaseHTTPRequestHandler dispatches on do_<METHOD>).
    def do_GET(self):
        self.route("GET")

    def do_HEAD(self):
        self.route("HEAD")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def do_OPTIONS(self):
        self.route("OPTIONS")

    # ---- plumbing

    def read_body(self):
        te = (self.headers.get("transfer-encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = self.headers.get("content-length")
        if n is None:
            return b""
        n = int(n)
        if n < 0:
            raise ValueError("negative content-length")
        data = self.rfile.read(n)
        if len(data) != n:
            raise ClientGone(f"the client sent {len(data)} of {n} body bytes")
        return data

    def send_answer(self, status, headers, body, reason=None, truncate=None, head=False, length=None):
        """Sends an answer. headers: list of (name, value) without content-length (added here:
        the length of `body`, even when only `truncate` bytes of it are sent; `length` for the
        answer to a HEAD, which has no body to measure)."""
        self.started = True
        try:
            self.send_response_only(status, reason)
            self.send_header("Date", self.date_time_string())
            for k, v in headers:
                self.send_header(k, v)
            if not (status < 200 or status in (204, 304)):  # these never have a body nor a length
                self.send_header("Content-Length", str(len(body) if length is None else length))
            if truncate is not None or self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(body if truncate is None else body[:truncate])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            self.close_connection = True
            raise ClientGone(str(e))
        if truncate is not None:
            self.close_hard()

    def close_hard(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def set(self, **kw):
        with self.state.lock:
            if self.entry is not None:
                self.entry.update(kw)

    # ---- dispatch

    def route(self, method):
        self.started = False
        self.entry = None
        try:
            try:
                body = self.read_body()
            except (ValueError, ClientGone) as e:
                self.close_connection = True
                if isinstance(e, ValueError):
                    self.send_answer(400, [("Content-Type", "text/plain")], f"fault proxy: bad request body: {e}\n".encode())
                return
            split = urllib.parse.urlsplit(self.path)
            if split.path.startswith("/_proxy/"):
                return self.control(method, split.path[len("/_proxy/"):], body)
            self.proxy(method, split, body)
        except ClientGone:
            self.set(answer="client-gone")
            self.close_connection = True
        except Exception as e:  # a bug in the proxy: recorded, and answered unmistakably
            self.bug(method, e)

    def bug(self, method, e):
        S = self.state
        with S.lock:
            S.errors.append({"method": method, "path": self.path, "error": repr(e), "traceback": traceback.format_exc()})
            if self.entry is not None:
                self.entry["answer"] = BUG_STATUS
        if self.started:
            # Part of an answer may be on the wire already: a second one would garble it.
            self.close_hard()
            return
        self.close_connection = True
        data = f"FAULT PROXY BUG (not an upstream fault): {e!r}; see GET /_proxy/errors\n".encode()
        try:
            self.send_answer(BUG_STATUS, [("Content-Type", "text/plain; charset=utf-8")], data, reason="Fault Proxy Bug")
        except (ClientGone, OSError):
            pass

    def reply_json(self, status, doc):
        self.send_answer(status, [("Content-Type", "application/json")], json.dumps(doc).encode())

    def control(self, method, what, body):
        S = self.state
        if what == "faults" and method == "POST":
            try:
                doc = json.loads(body or b"null")
                if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
                    raise ValueError('the body must be {"rules": [...]}')
                with S.lock:
                    start = len(S.rules)
                    rules = [validate_rule(r, start + i) for i, r in enumerate(doc["rules"])]
                    S.rules.extend(rules)
            except ValueError as e:
                return self.reply_json(400, {"error": str(e)})
            return self.reply_json(200, {"ok": True})
        if what == "faults" and method == "GET":
            with S.lock:
                return self.reply_json(200, S.rules)
        if what == "faults" and method == "DELETE":
            with S.lock:
                S.rules.clear()
            return self.reply_json(200, {"ok": True})
        if what == "requests" and method == "GET":
            with S.lock:
                return self.reply_json(200, S.log)
        if what == "requests" and method == "DELETE":
            with S.lock:
                S.log.clear()
            return self.reply_json(200, {"ok": True})
        if what == "issued" and method == "GET":
            with S.lock:
                return self.reply_json(200, S.issued)
        if what == "errors" and method == "GET":
            with S.lock:
                return self.reply_json(200, S.errors)
        if what == "errors" and method == "DELETE":
            with S.lock:
                S.errors.clear()
            return self.reply_json(200, {"ok": True})
        return self.reply_json(404, {"error": f"no control route {method} /_proxy/{what}"})

    def match(self, method, path):
        """The first rule that hits this request (consuming one of its count), or None."""
        S = self.state
        with S.lock:
            for i, r in enumerate(S.rules):
                if r["count"] <= 0 or r.get("method", method) != method or not re.search(r["path"], path):
                    continue
                if r["after"] > 0:
                    r["after"] -= 1
                    continue
                r["count"] -= 1
                return i, dict(r)
        return None

    def proxy(self, method, split, body):
        S = self.state
        form, members = field_names(self.headers.get("content-type"), body)
        query_fields = [k for k, _ in urllib.parse.parse_qsl(split.query, keep_blank_values=True)]
        with S.lock:
            self.entry = {
                "method": method, "path": split.path, "query_fields": query_fields, "time": time.time(),
                "forwarded": False, "upstream_status": None, "upstream_error": None, "fault": None,
                "answer": None, "form_fields": form, "json_fields": members,
            }
            S.log.append(self.entry)
        hit = self.match(method, split.path)
        rule = None
        if hit:
            index, rule = hit
            self.set(fault={"rule": index, "when": rule["when"], "actions": actions_of(rule)})
            if rule.get("raise"):
                raise RuntimeError(f"induced by a fault rule: {rule['raise']}")
        head = method == "HEAD"

        if rule and rule["when"] == "before":
            if rule.get("delay"):
                time.sleep(rule["delay"])
            if self.act(rule, None, head):
                return
            # delay only: forward late

        upstream = self.forward(method, split, body)
        if upstream is None:
            return  # unreachable: answered 502
        status, reason, headers, data, length = upstream
        if rule and rule["when"] == "after":
            if rule.get("delay"):
                time.sleep(rule["delay"])
            if self.act(rule, upstream[:4], head):
                return
        self.set(answer=status)
        self.send_answer(status, headers, data, reason=reason, head=head, length=length)

    def act(self, rule, upstream, head):
        """Applies a rule's answer actions. Returns True when it answered (or dropped)."""
        if rule.get("drop"):
            self.set(answer="drop")
            self.close_hard()
            return True
        if rule.get("redirect"):
            status = rule.get("status", 302)
            headers = [("Location", rule["location"])] + list((rule.get("headers") or {}).items())
            self.set(answer=status)
            self.send_answer(status, headers, b"", head=head)
            return True
        answer = None
        if rule.get("oversize"):
            answer = (rule.get("status", 200), None, self.rule_headers(rule, "application/json"), oversize_body(rule))
        elif rule.get("status"):
            if "raw" in rule:
                data, ct = rule["raw"].encode(), "text/plain; charset=utf-8"
            else:
                data, ct = json.dumps(rule.get("body", {"message": "injected fault"})).encode(), "application/json"
            answer = (rule["status"], None, self.rule_headers(rule, ct), data)
        elif "truncate" in rule:
            answer = upstream
        if answer is None:
            return False
        status, reason, headers, data = answer
        if "truncate" in rule and not head:
            if rule["truncate"] >= len(data):
                raise ValueError(f"truncate {rule['truncate']} cuts nothing from a {len(data)}-byte body")
            self.set(answer="truncated")
            self.send_answer(status, headers, data, reason=reason, truncate=rule["truncate"])
            return True
        self.set(answer=status)
        self.send_answer(status, headers, data, reason=reason, head=head)
        return True

    @staticmethod
    def rule_headers(rule, content_type):
        extra = list((rule.get("headers") or {}).items())
        if not any(k.lower() == "content-type" for k, _ in extra):
            extra.insert(0, ("Content-Type", content_type))
        return [(k, str(v)) for k, v in extra if k.lower() != "content-length"]

    def note_issued(self, data):
        """Keeps the token values of a JSON answer (`GET /_proxy/issued`), so a test can search
        its outputs for every value the upstream issued, including those the client never saw."""
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if isinstance(doc, dict):
            with self.state.lock:
                for k in ("access_token", "refresh_token", "id_token"):
                    if isinstance(doc.get(k), str):
                        self.state.issued.append(doc[k])
                # Vault: a token (`auth.client_token`) or an AppRole secret ID (`data.secret_id`).
                for outer, k in (("auth", "client_token"), ("data", "secret_id")):
                    inner = doc.get(outer)
                    if isinstance(inner, dict) and isinstance(inner.get(k), str):
                        self.state.issued.append(inner[k])

    def forward(self, method, split, body):
        """Sends the request upstream. Returns (status, reason, headers, body, HEAD's length) or
        None after answering 502 when the upstream cannot be reached."""
        up = self.state.upstream
        target = (up.path.rstrip("/") + split.path) or "/"
        if split.query:
            target += "?" + split.query
        named = {h.strip().lower() for h in (self.headers.get("connection") or "").split(",") if h.strip()}
        headers = [
            (k, v) for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP | named | {"host", "content-length", "expect"}
        ]
        headers.append(("Host", up.netloc))
        if body or method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        if up.scheme == "https":
            conn = http.client.HTTPSConnection(up.hostname, up.port or 443, timeout=UPSTREAM_TIMEOUT,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=UPSTREAM_TIMEOUT)
        try:
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders(body or None)
                self.set(forwarded=True)
                resp = conn.getresponse()
                data = b"" if method == "HEAD" else resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.set(upstream_error=repr(e))
                self.close_connection = True
                self.set(answer=502)
                self.send_answer(502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {e!r}\n".encode())
                return None
        finally:
            conn.close()
        self.set(upstream_status=resp.status)
        self.note_issued(data)
        named = {h.strip().lower() for h in (resp.getheader("connection") or "").split(",") if h.strip()}
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | named | {"content-length", "date"}]
        # A HEAD answer has no body to measure: it keeps the upstream's length.
        length = resp.getheader("content-length", "0") if method == "HEAD" else None
        return resp.status, resp.reason, out, data, length


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # A listen backlog as deep as a client's burst of new connections (socketserver's is 5).
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # An exception that escaped the handler (e.g. while parsing the request line): a proxy bug,
        # unless the client simply went away.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ClientGone)):
            return
        with Handler.state.lock:
            Handler.state.errors.append({"method": "?", "path": "?", "error": repr(exc), "traceback": traceback.format_exc()})


def main():
    port_file, upstream = sys.argv[1], sys.argv[2]
    up = urllib.parse.urlsplit(upstream)
    if up.scheme not in ("http", "https") or not up.hostname:
        sys.exit(f"fault_proxy: the upstream must be an http(s) URL, got {upstream!r}")
    Handler.state = State(up)
    server = Server(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
