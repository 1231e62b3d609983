"""Cold start and hot path of `GET /put-url`, against botocore, as ratios in one run.

- hot: the Lambda handler (Chalice routing included) answering `GET /put-url`, per
  request, against botocore's `generate_presigned_url` alone on a cached client;
- cold: a fresh process that imports app.py and answers one event, against a fresh
  process that imports boto3, builds an S3 client and presigns once;
- the peak RSS of the cold process.

The handler includes the request's JSON log line (written to /dev/null here).

Targets (medians, ratios in one run): hot <= 0.40, cold <= 0.25, peak RSS <= 40 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.stack import PROJECT

ENV = {
    "AUTH_MODE": "none",
    "UPLOAD_BUCKET": "my-uploads",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEN7//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==",
    "CORS_ALLOW_ORIGIN": "*",
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


def cold_run(code: str) -> tuple[float, float, int]:
    """(wall ms of the whole process, ms inside it, peak RSS KB)."""
    env = {"PATH": os.environ.get("PATH", ""), **ENV, "PYTHONPATH": str(PROJECT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    wall = (time.perf_counter() - started) * 1000
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, inner["ms"], inner["rss_kb"]


def hot(rounds: int, batch: int) -> tuple[float, float]:
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
    return statistics.median(results["handler"]), statistics.median(results["botocore"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signing")
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--hot-rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)

    apps, botos = [], []
    for _ in range(args.cold_runs):
        apps.append(cold_run(COLD_APP))
        botos.append(cold_run(COLD_BOTO3))
    app_wall = statistics.median(w for w, _, _ in apps)
    boto_wall = statistics.median(w for w, _, _ in botos)
    app_rss = max(r for _, _, r in apps) / 1024
    boto_rss = max(r for _, _, r in botos) / 1024
    handler_us, botocore_us = hot(args.hot_rounds, args.batch)

    print(f"cold start, whole process, median of {args.cold_runs}:")
    print(f"  {'app.py + one GET /put-url':<34}{app_wall:8.1f} ms   peak RSS {app_rss:5.1f} MB")
    print(
        f"  {'boto3 + client + one presign':<34}{boto_wall:8.1f} ms   peak RSS {boto_rss:5.1f} MB"
    )
    print(f"  {'ratio':<34}{app_wall / boto_wall:8.2f}x     (target <= 0.25; RSS <= 40 MB)")
    print(f"hot path, per request, median of {args.hot_rounds} x {args.batch}:")
    print(f"  {'handler, GET /put-url':<34}{handler_us:8.1f} us")
    print(f"  {'botocore generate_presigned_url':<34}{botocore_us:8.1f} us")
    print(f"  {'ratio':<34}{handler_us / botocore_us:8.2f}x     (target <= 0.40)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
