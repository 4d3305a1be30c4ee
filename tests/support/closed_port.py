"""Holds a loopback port where nothing listens, for tests of unreachable servers.

usage: python closed_port.py PORT_FILE
Binds a TCP socket to 127.0.0.1 on a port the kernel picks, WITHOUT listen(), writes the port to
PORT_FILE and waits to be killed. A connection to it is refused (RST), and no other socket can
bind the port while this one holds it (it does not set SO_REUSEADDR/SO_REUSEPORT), so no server
started by a parallel test can take it: unlike binding port 0 and releasing it, nothing races.
"""

import os
import signal
import socket
import sys

port_file = sys.argv[1]
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
with open(port_file + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
