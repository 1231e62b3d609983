"""`chalice local`, without the 40 ms stall on every keep-alive request.

    python -m devstack.chalice_local local --stage local --port 8000

Chalice's handler writes a response's status line, headers and body as separate small
writes. With Nagle's algorithm on, the last write waits for the ACK of the previous one,
which the client delays (up to 40 ms on Linux) for every request after a connection's
first. http.server's handlers turn Nagle off (TCP_NODELAY) when asked to; this asks,
before Chalice builds its handler, then runs Chalice's own CLI unchanged.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler


def main() -> None:
    BaseHTTPRequestHandler.disable_nagle_algorithm = True
    from chalice.cli import cli

    args = sys.argv[1:]
    # Chalice's reloader restarts its worker with sys.argv, so make that this module again.
    sys.argv = [sys.executable, "-m", "devstack.chalice_local", *args]
    cli.main(args=args, prog_name="chalice", obj={})


if __name__ == "__main__":
    main()
