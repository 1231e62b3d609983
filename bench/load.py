"""Load: concurrent keep-alive clients against `chalice local`, a fixed number of requests.

Reports throughput, p50/p99 latency, errors and whether every UUID was unique, for the
server `make run` starts (devstack/chalice_local.py, TCP_NODELAY on) and for plain
`chalice local`, whose responses stall about 40 ms per keep-alive request (Nagle's
algorithm against the client's delayed ACK).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.stack import PROJECT, free_port

ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}  # fmt: skip
SERVERS = {
    "make run (TCP_NODELAY)": [sys.executable, "-m", "devstack.chalice_local"],
    "plain chalice local": [str(Path(sys.executable).with_name("chalice"))],
}


@contextmanager
def server(command: list[str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [*command, "local", "--stage", "local", "--port", str(port), "--no-autoreload"],
        cwd=PROJECT, env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def drive(url: str, clients: int, requests_per_client: int) -> dict[str, float]:
    latencies: list[float] = []
    uuids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()  # keep-alive, as browsers and SDKs do
        mine, ids = [], []
        for _ in range(requests_per_client):
            started = time.perf_counter()
            response = session.get(f"{url}/put-url", timeout=10)
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                with lock:
                    errors.append(str(response.status_code))
                continue
            ids.append(response.json()["UUID"])
        with lock:
            latencies.extend(mine)
            uuids.extend(ids)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors": len(errors),
        "unique": float(len(set(uuids)) == len(uuids) == len(latencies) - len(errors)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="in all")
    args = parser.parse_args(argv)
    per_client = args.requests // args.clients
    print(f"load: {args.clients} keep-alive clients x {per_client} GET /put-url, chalice local")
    failed = False
    for name, command in SERVERS.items():
        with server(command) as url:
            drive(url, 2, 20)  # warm up: the app is imported and its services built
            r = drive(url, args.clients, per_client)
        print(f"  {name:<24}{r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.1f} ms   "
              f"p99 {r['p99_ms']:6.1f} ms   errors {r['errors']:.0f}   "
              f"UUIDs unique: {'yes' if r['unique'] else 'NO'}")  # fmt: skip
        failed |= bool(r["errors"]) or not r["unique"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
