"""Cold start and hot path of `GET /put-url`, against botocore, as ratios in one run,
on a whole core and at a Lambda function's CPU share (bench/cpu_share.py).

- hot: the Lambda handler (Chalice routing included) answering `GET /put-url`, per
  request, against botocore's `generate_presigned_url` alone on a cached client, both
  in one process (at a share: one child in the share's cgroup);
- cold: a fresh process that imports app.py and answers one event, run from the Lambda
  zip's files (`make package`'s, unpacked; ``-B``, as /var/task is read-only), with the
  zip's bytecode and without it (as `chalice deploy` ships it), against a fresh process
  that imports boto3, builds an S3 client and presigns once, interleaved, at each share;
- the peak RSS of the cold process.

The handler includes the request's JSON log line (written to /dev/null here).

Targets (issue 23; medians, ratios in one run): cold <= 0.15 at 128 and 256 MB, hot
<= 0.40 on a whole core and at 128 MB, peak RSS <= 40 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.cpu_share import CpuShare, available, share
from bench.stack import PROJECT
from infra.bytecode import compile_tree
from infra.package import package

ENV = {
    "AUTH_MODE": "none",
    "UPLOAD_BUCKET": "my-uploads",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEN7//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==",
    "CORS_ALLOW_ORIGIN": "*",
    # As on the shipped dev and prod stages: the app also registers the verifier.
    "UPLOAD_VERIFY": "true",
}
EVENT = {
    "resource": "/put-url", "path": "/put-url", "httpMethod": "GET",
    "headers": {"Host": "abc.execute-api.eu-west-1.amazonaws.com"},
    "multiValueHeaders": {"Host": ["abc.execute-api.eu-west-1.amazonaws.com"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/put-url", "httpMethod": "GET", "path": "/api/put-url",
                       "stage": "api", "requestId": "bench", "identity": {"sourceIp": "1.2.3.4"}},
}  # fmt: skip

Run = tuple[float, float, int]  # a cold run: wall ms, ms inside, peak RSS KB

# Each cold child prints {"ms": time to answer, "rss_kb": its peak RSS} as its last line.
COLD_APP = f"""
import json, os, resource, sys, time
started = time.perf_counter()
import app
response = app.app({EVENT!r}, None)
assert response["statusCode"] == 200, response
assert not [m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")]
print(json.dumps({{"ms": (time.perf_counter() - started) * 1000,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
COLD_BOTO3 = """
import json, os, resource, time
started = time.perf_counter()
import boto3
from botocore.config import Config
client = boto3.session.Session().client(
    "s3", region_name="eu-west-1",
    config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
client.generate_presigned_url("put_object", Params={"Bucket": "my-uploads", "Key": "k"},
                              ExpiresIn=300, HttpMethod="PUT")
print(json.dumps({"ms": (time.perf_counter() - started) * 1000,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def cold_run(
    code: str, cpu: CpuShare | None = None, task: Path | None = None
) -> tuple[float, float, int]:
    """(wall ms of the whole process, ms inside it, peak RSS KB); in ``cpu``'s cgroup; from
    the unpacked zip ``task`` (first on sys.path, no .pyc written) if given."""
    env = {"PATH": os.environ.get("PATH", ""), **ENV, "PYTHONPATH": str(PROJECT)}
    argv = [sys.executable, "-c", code]
    if task is not None:
        env.pop("PYTHONPATH")
        argv.insert(1, "-B")
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=task or PROJECT, capture_output=True, text=True,
                          check=True, preexec_fn=cpu.preexec() if cpu else None)  # fmt: skip
    wall = (time.perf_counter() - started) * 1000
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, inner["ms"], inner["rss_kb"]


def lambda_tasks(root: Path) -> tuple[Path, Path]:
    """The deployment zip of `make package` unpacked twice under ``root``: as Chalice
    builds it (no bytecode) and with bytecode, compiled as `make package` does but by
    this Python (the boto3 side runs on it too)."""
    package("prod", root / "package")
    source, compiled = root / "source", root / "compiled"
    for task in (source, compiled):
        with zipfile.ZipFile(root / "package" / "deployment.zip") as archive:
            archive.extractall(task)
        for cache in list(task.rglob("__pycache__")):
            shutil.rmtree(cache)
    compile_tree(compiled, sys.executable)
    return source, compiled


def hot_at(cpu: CpuShare, rounds: int, batch: int) -> tuple[float, float, float, float]:
    """:func:`hot` in a child process in ``cpu``'s cgroup."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.signing", "--hot-only", "--hot-rounds", str(rounds),
         "--batch", str(batch)],
        env=env, cwd=PROJECT, capture_output=True, text=True, check=True,
        preexec_fn=cpu.preexec(),
    )  # fmt: skip
    handler_us, botocore_us, low, high = json.loads(done.stdout.strip().splitlines()[-1])
    return handler_us, botocore_us, low, high


def hot(rounds: int, batch: int) -> tuple[float, float, float, float]:
    """Median microseconds per call: (handler, botocore presign)."""
    os.environ.update(ENV)
    import boto3
    from botocore.config import Config

    import app

    client = boto3.session.Session().client(
        "s3", region_name="eu-west-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )  # fmt: skip
    params: dict[str, Any] = {"Bucket": "my-uploads", "Key": "put_folder/k"}

    def handler() -> None:
        app.app(EVENT, None)

    def botocore_presign() -> None:
        client.generate_presigned_url("put_object", Params=params, ExpiresIn=300,
                                      HttpMethod="PUT")  # fmt: skip

    # Warm up: the services are built, and the client's first presign is done.
    results: dict[str, list[float]] = {"handler": [], "botocore": []}
    # The handler writes its JSON log line per request, as in Lambda; here to /dev/null.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        handler()
        botocore_presign()
        for _ in range(rounds):
            for name, call in (("handler", handler), ("botocore", botocore_presign)):
                started = time.perf_counter()
                for _ in range(batch):
                    call()
                results[name].append((time.perf_counter() - started) / batch * 1e6)
    ratios = [h / b for h, b in zip(results["handler"], results["botocore"], strict=True)]
    return (statistics.median(results["handler"]), statistics.median(results["botocore"]),
            min(ratios), max(ratios))  # fmt: skip


def spread(values: list[float]) -> str:
    """The range of ``values``: how much the runs disagree."""
    return f"{min(values):.2f}-{max(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signing")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--hot-rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--share-batch", type=int, default=3000, help="batch at a CPU share")
    parser.add_argument("--shares", default="256,128", help="Lambda memory sizes, MB")
    parser.add_argument("--hot-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hot_only:  # the child of hot_at: one JSON line
        print(json.dumps(hot(args.hot_rounds, args.batch)))
        return 0

    why_not = available()
    sizes = [int(mb) for mb in args.shares.split(",") if mb] if why_not is None else []
    cpus: dict[str, CpuShare | None] = {"whole core": None}
    cpus.update({f"{mb} MB ({share(mb) * 100:.1f} %)": CpuShare(mb) for mb in sizes})
    scratch = tempfile.TemporaryDirectory()
    try:
        source, compiled = lambda_tasks(Path(scratch.name))
        # Interleaved: each run takes the app and the boto3 path at every share in turn,
        # so that a noisy moment hits both sides.
        cold: dict[str, list[tuple[Run, Run, Run]]] = {name: [] for name in cpus}
        for _ in range(args.cold_runs):
            for name, cpu in cpus.items():
                cold[name].append((cold_run(COLD_APP, cpu, compiled),
                                   cold_run(COLD_APP, cpu, source),
                                   cold_run(COLD_BOTO3, cpu)))  # fmt: skip
        warm = {"whole core": hot(args.hot_rounds, args.batch)}
        for name, cpu in cpus.items():
            if cpu is not None:
                # Each timed batch spans many 100 ms quota periods (about 2 s for the
                # handler at 128 MB), so that where a period starts or ends is noise of a
                # few per cent, and throttling falls on both sides alike.
                warm[name] = hot_at(cpu, min(args.hot_rounds, 5), args.share_batch)
    finally:
        scratch.cleanup()
        for cpu in cpus.values():
            if cpu is not None:
                cpu.close()

    if why_not is not None:
        print(f"note: {why_not}: whole-core figures only, not Lambda's share")
    print(
        f"cold start, whole process (interpreter, imports, one request), from the Lambda "
        f"zip, median of {args.cold_runs}; ratios to the boto3 path, range across runs:"
    )
    print(f"  {'':<18}{'zip with .pyc':>15}{'without':>10}{'boto3 path':>13}"
          f"{'ratio':>8}{'range':>12}{'no .pyc':>9}{'app RSS':>10}")  # fmt: skip
    for name, runs in cold.items():
        app_ms, source_ms, boto_ms = (statistics.median(r[i][0] for r in runs) for i in range(3))
        ratios = [app[0] / boto[0] for app, _, boto in runs]
        source_ratios = [source[0] / boto[0] for _, source, boto in runs]
        rss = max(max(app[2], source[2]) for app, source, _ in runs) / 1024
        print(f"  {name:<18}{app_ms:>12.1f} ms{source_ms:>7.1f} ms{boto_ms:>10.1f} ms"
              f"{statistics.median(ratios):>7.2f}x{spread(ratios):>12}"
              f"{statistics.median(source_ratios):>8.2f}x{rss:>7.1f} MB")  # fmt: skip
    print("  targets: ratio (zip with .pyc) <= 0.15 at 128 and 256 MB; peak RSS <= 40 MB")
    print(f"hot path, per request, median of {args.hot_rounds} rounds:")
    print(f"  {'':<22}{'handler GET /put-url':>24}{'botocore presign':>27}{'ratio':>9}"
          f"{'range':>12}")  # fmt: skip
    for name, (handler_us, botocore_us, low, high) in warm.items():
        print(f"  {name:<22}{handler_us:>21.1f} us{botocore_us:>24.1f} us"
              f"{handler_us / botocore_us:>8.2f}x{spread([low, high]):>12}")  # fmt: skip
    print("  target: ratio <= 0.40 on a whole core and at 128 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
