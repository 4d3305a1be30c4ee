"""moto (AWS service mocks) as a server on a free loopback port, for the end-to-end tests.

usage: python moto_server.py PORT_FILE

The same server as `moto_server -H 127.0.0.1 -p PORT`, but on a port the kernel picks when it
binds (written to PORT_FILE once it listens), so tests that start servers in parallel never race
for a port. IAM auth is off until `POST /moto-api/reset-auth` with body `0` (see moto's docs);
from then on every request's SigV4 signature and IAM policies are checked.
"""

import os
import signal
import sys
import threading

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def main() -> None:
    port_file = sys.argv[1]
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(port)
    tmp = f"{port_file}.tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
