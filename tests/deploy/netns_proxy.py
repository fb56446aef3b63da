"""Relay stdin/stdout to a TCP port: SSH's ProxyCommand into a network namespace.

    ip netns exec NS python3 netns_proxy.py 127.0.0.1 22

Lets Ansible and testinfra on the host reach a container's sshd, which listens only on the
loopback interface of a network namespace the test created.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    sel = selectors.DefaultSelector()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sel.register(stdin, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    open_ends = 2
    while open_ends:
        for key, _ in sel.select():
            if key.fileobj is sock:
                data = sock.recv(65536)
                if not data:
                    return 0
                os.write(stdout, data)
            else:
                data = os.read(stdin, 65536)
                if not data:
                    sel.unregister(stdin)
                    sock.shutdown(socket.SHUT_WR)
                    open_ends -= 1
                    continue
                sock.sendall(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
