"""A local stack (moto + `chalice local`) for a benchmark, on free ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LocalStack:
    api: str
    s3: str
    page: str = ""  # the upload page, which also serves the browser client at /client/


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_stack(s3_endpoint: str | None = None) -> Iterator[LocalStack]:
    """moto and `chalice local` (or only the latter, against ``s3_endpoint``)."""
    s3, api, web = free_port(), free_port(), free_port()
    external = ["--s3-endpoint", s3_endpoint] if s3_endpoint else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--s3-port", str(s3), "--api-port", str(api),
         "--web-port", str(web), "--no-reload", *external],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        for line in proc.stdout:
            if "devstack: ready" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start")
        else:
            raise RuntimeError(f"the local stack exited with status {proc.wait()}")
        # Keep reading its log: a full pipe would block `chalice local` mid-request.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield LocalStack(f"http://127.0.0.1:{api}", s3_endpoint or f"http://127.0.0.1:{s3}",
                         f"http://127.0.0.1:{web}/")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
