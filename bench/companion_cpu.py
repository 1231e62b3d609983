"""Server CPU per request: this API's Lambda handler against Uppy Companion 6.

A user who wants Uppy's S3 uploads without this project runs Companion (Node, Express,
the AWS SDK v3). Both sides presign without calling S3 on the two routes measured:

- ``GET /s3/multipart/{uploadId}/{partNumber}?key=`` (sign one part), per part of every
  multipart upload;
- ``GET /s3/params?filename=&type=`` (a POST policy for one file), per single file.

Companion runs as a server (bench/companion/server.js, its Prometheus metrics off, the
cheaper setup); its CPU is the process's user + system time (``/proc/<pid>/stat``) over a
batch of keep-alive requests, HTTP parsing included. This API's CPU is what Lambda bills:
the handler's process time over the same batch, in process (API Gateway parses HTTP), its
JSON log line with its metrics included (written to /dev/null). Rounds alternate between
the two; medians and the ratio's range are printed.

Target (issue 23): at least 5x less CPU than Companion on both routes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from bench.signing import ENV  # the same stage settings and credentials
from bench.stack import free_port

COMPANION = Path(__file__).resolve().parent / "companion"
TICK = os.sysconf("SC_CLK_TCK")
UUID = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
KEY = f"put_folder/{UUID}.bin"
# (route name, path with query, API Gateway resource, path parameters, query)
ROUTES: list[tuple[str, str, str, dict[str, str] | None, dict[str, str]]] = [
    ("sign part", f"/s3/multipart/abc/3?key={KEY}", "/s3/multipart/{upload_id}/{part_number}",
     {"upload_id": "abc", "part_number": "3"}, {"key": KEY}),
    ("/s3/params", "/s3/params?filename=photo.jpg&type=image/jpeg", "/s3/params", None,
     {"filename": "photo.jpg", "type": "image/jpeg"}),
]  # fmt: skip


def installed() -> None:
    """Companion's locked packages, installed on first use (npm ci)."""
    stamp = COMPANION / "node_modules" / ".package-lock.json"
    lock = COMPANION / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("bench.companion_cpu needs Node.js and npm (apt-get install nodejs npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=COMPANION, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


@contextlib.contextmanager
def companion(log: Path) -> Iterator[tuple[str, int]]:
    """Companion in production mode, listening on loopback: (base URL, pid). Its log goes
    to ``log`` (a file: a pipe nobody reads would block it)."""
    port = free_port()
    node = shutil.which("node") or "node"
    env = {**os.environ, "PORT": str(port), "NODE_ENV": "production"}
    with log.open("w") as out:
        proc = subprocess.Popen([node, "server.js"], cwd=COMPANION, stdout=out, stderr=out,
                                env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "listening" not in log.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"Companion did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def process_cpu(pid: int) -> float:
    """Seconds of user + system CPU the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def companion_cpu_us(session: requests.Session, url: str, pid: int, count: int) -> float:
    before = process_cpu(pid)
    for _ in range(count):
        response = session.get(url)
        response.raise_for_status()
    return (process_cpu(pid) - before) / count * 1e6


def event(path: str, resource: str, params: dict[str, str] | None, query: dict[str, str]) -> Any:
    return {
        "resource": resource, "path": path.split("?")[0], "httpMethod": "GET",
        "headers": {"Host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["abc.execute-api.eu-west-1.amazonaws.com"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": params, "stageVariables": None, "body": None,
        "isBase64Encoded": False,
        "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": path,
                           "stage": "api", "requestId": "bench", "identity": {}},
    }  # fmt: skip


def handler_cpu_us(call: Callable[[], Any], count: int) -> float:
    before = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - before) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.companion_cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per round and route")
    args = parser.parse_args(argv)
    installed()
    os.environ.update(ENV)
    import app

    results: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in ROUTES}
    log = Path(tempfile.mkdtemp()) / "companion.log"
    with companion(log) as (base, pid), requests.Session() as session, \
            open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # fmt: skip
        calls = {name: (f"{base}{path}", event(path, resource, params, query))
                 for name, path, resource, params, query in ROUTES}  # fmt: skip
        handlers = {name: functools.partial(app.app, lambda_event, None)
                    for name, (_, lambda_event) in calls.items()}  # fmt: skip
        for name, (url, _) in calls.items():  # warm up both: JIT, caches, connections
            companion_cpu_us(session, url, pid, 300)
            assert handlers[name]()["statusCode"] == 200
            handler_cpu_us(handlers[name], 300)
        for _ in range(args.rounds):
            for name, (url, _) in calls.items():
                ours = handler_cpu_us(handlers[name], args.requests)
                theirs = companion_cpu_us(session, url, pid, args.requests)
                results[name].append((ours, theirs))

    print(f"server CPU per request, median of {args.rounds} rounds of {args.requests}:")
    print(f"  {'':<14}{'this API (Lambda handler)':>27}{'Companion 6 (server)':>23}"
          f"{'less CPU':>11}{'range':>14}")  # fmt: skip
    for name, runs in results.items():
        ours = statistics.median(r[0] for r in runs)
        theirs = statistics.median(r[1] for r in runs)
        factors = [t / o for o, t in runs]
        print(f"  {name:<14}{ours:>24.1f} us{theirs:>20.1f} us{statistics.median(factors):>10.1f}x"
              f"{min(factors):>8.1f}-{max(factors):.1f}x")  # fmt: skip
    print("  target: at least 5x less CPU than Companion on both routes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
