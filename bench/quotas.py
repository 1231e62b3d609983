"""What quotas cost GET /put-url: the warm handler and the cold start, with quotas on
(UPLOAD_QUOTA_FILES_PER_DAY and _BYTES_PER_DAY, moto's DynamoDB server on loopback) and
off, side by side, interleaved.

- warm: per request, the handler's wall time and its process CPU time; the wall time
  includes moto answering on loopback (a real DynamoDB transaction takes about 5 to 10 ms
  more), the CPU time is the service's own: signing the DynamoDB request, its JSON,
  parsing the answer;
- cold: a fresh process that imports app.py and answers one GET /put-url (a first
  DynamoDB connection included), on a whole core and at 128 MB's share.

Each request reserves a new upload, as a real one does; the limits are high enough that
none is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from bench.cpu_share import CpuShare, available
from bench.signing import COLD_APP, ENV, EVENT
from bench.stack import PROJECT, free_port
from chalicelib.core.settings import Settings
from devstack.__main__ import create_quota_table

TABLE = "bench-quotas"
QUOTAS = {"UPLOAD_QUOTA_FILES_PER_DAY": "1000000000", "UPLOAD_QUOTA_BYTES_PER_DAY": str(10**15),
          "UPLOAD_QUOTA_TABLE": TABLE}  # fmt: skip


@contextlib.contextmanager
def dynamodb() -> Iterator[str]:
    """moto's server on loopback, a process of its own (its CPU is not the service's),
    with the quota table, made by `make run`'s own code."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "devstack.moto_server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        time.sleep(0.1)
    settings = Settings(bucket=ENV["UPLOAD_BUCKET"], region=ENV["AWS_REGION"],
                        quota_table=TABLE, dynamodb_endpoint_url=url)  # fmt: skip
    create_quota_table(settings, {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                                  "AWS_REGION": ENV["AWS_REGION"]})  # fmt: skip
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def cold(extra: dict[str, str], cpu: CpuShare | None) -> float:
    env = {"PATH": os.environ.get("PATH", ""), **ENV, **extra, "PYTHONPATH": str(PROJECT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", COLD_APP], env=env, cwd=PROJECT, check=True,
                   capture_output=True, preexec_fn=cpu.preexec() if cpu else None)  # fmt: skip
    return (time.perf_counter() - started) * 1000


def warm(url: str, rounds: int, batch: int) -> dict[str, tuple[float, float]]:
    """Median (wall us, CPU us) per request: quotas off, then on, alternating rounds."""
    os.environ.update(ENV)
    import app

    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    callers = (f"198.51.100.{n}" for n in itertools.count(1))
    base = dict(os.environ)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(rounds):
            for mode in ("off", "on"):
                os.environ.clear()
                os.environ.update({**base, **ENV})
                if mode == "on":
                    os.environ.update({**QUOTAS, "AWS_ENDPOINT_URL_DYNAMODB": url})
                app.services.cache_clear()
                # A caller of its own for each batch (on this open stage, a source IP):
                # its limits are read once, and its uploads in flight stay under 1,000.
                owner = next(callers)
                event = json.loads(json.dumps(EVENT))
                event["requestContext"]["identity"] = {"sourceIp": owner}
                app.app(event, None)  # warm: the services, the connection, the limits
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(batch):
                    assert app.app(event, None)["statusCode"] == 200
                results[mode].append(((time.perf_counter() - wall) / batch * 1e6,
                                      (time.process_time() - cpu) / batch * 1e6))  # fmt: skip
    os.environ.clear()
    os.environ.update(base)
    return {mode: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
            for mode, runs in results.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quotas")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args(argv)
    why_not = available()
    with dynamodb() as url:
        cpus: dict[str, CpuShare | None] = {"whole core": None}
        if why_not is None:
            cpus["128 MB (7.2 %)"] = CpuShare(128)
        try:
            colds: dict[str, dict[str, list[float]]] = {n: {"off": [], "on": []} for n in cpus}
            on = {**QUOTAS, "AWS_ENDPOINT_URL_DYNAMODB": url}
            for _ in range(args.cold_runs):
                for name, cpu in cpus.items():
                    colds[name]["off"].append(cold({}, cpu))
                    colds[name]["on"].append(cold(on, cpu))
        finally:
            for cpu in cpus.values():
                if cpu is not None:
                    cpu.close()
        hot = warm(url, args.rounds, args.batch)
    if why_not is not None:
        print(f"note: {why_not}: whole-core figures only, not Lambda's share")
    print(f"quotas on GET /put-url (moto's DynamoDB on loopback), medians of {args.rounds} "
          f"rounds of {args.batch} and of {args.cold_runs} cold starts:")  # fmt: skip
    print(f"  {'':<30}{'quotas off':>14}{'quotas on':>14}{'added':>12}")
    (off_wall, off_cpu), (on_wall, on_cpu) = hot["off"], hot["on"]
    print(f"  {'warm, wall (incl. moto)':<30}{off_wall:>11.1f} us{on_wall:>11.1f} us"
          f"{on_wall - off_wall:>9.1f} us")  # fmt: skip
    print(f"  {'warm, CPU of the service':<30}{off_cpu:>11.1f} us{on_cpu:>11.1f} us"
          f"{on_cpu - off_cpu:>9.1f} us")  # fmt: skip
    for name, runs in colds.items():
        cold_off, cold_on = statistics.median(runs["off"]), statistics.median(runs["on"])
        print(f"  {'cold, ' + name:<30}{cold_off:>11.1f} ms{cold_on:>11.1f} ms"
              f"{cold_on - cold_off:>9.1f} ms")  # fmt: skip
    print(json.dumps({"warm": hot}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
