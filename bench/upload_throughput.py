"""Upload throughput: the CLI (`presigned-upload`) with each checksum mode against boto3's
`upload_file` (s3transfer), the same 512 MiB file, the same local S3, the same part size and
concurrency, alternating in one run. Prints medians and ratios.

Each side runs with per-part checksums and without, and is compared like for like:
- with: the CLI's SHA-256 per part (the upload is created with ChecksumAlgorithm=SHA256)
  against s3transfer's default, a CRC32 per part (also naming its algorithm);
- without: the CLI's ``--checksum none`` against s3transfer told to send none
  (request_checksum_calculation=when_required).
moto computes a full-object CRC on completion unless the upload named an algorithm, so
the "without" pair includes that server-side cost on both sides, and the "with" pair on
neither. ``--checksum md5`` (Content-MD5 per part, S3's older check) is shown as well.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from bench.stack import LocalStack, local_stack
from presigned_upload.cli import main as cli_main

MiB = 1024**2
BUCKET = "uploads-local"


def make_file(directory: Path, size: int) -> Path:
    path = directory / "bench.bin"
    with path.open("wb") as f:
        for _ in range(size // (64 * MiB)):
            f.write(os.urandom(64 * MiB))
        f.write(os.urandom(size % (64 * MiB)))
    return path


def s3_client(stack: LocalStack, checksums: bool = False):  # type: ignore[no-untyped-def]
    config = Config(
        request_checksum_calculation="when_supported" if checksums else "when_required",
        max_pool_connections=32,
    )
    return boto3.client(
        "s3", endpoint_url=stack.s3, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=config,
    )  # fmt: skip


def run_cli(
    stack: LocalStack, path: Path, concurrency: int, part_mib: int, state: Path, checksum: str
) -> float:
    out = io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out):
        code = cli_main(["upload", str(path), "--api", stack.api, "--json", "--no-progress",
                         "--concurrency", str(concurrency), "--part-size", str(part_mib),
                         "--threshold", str(part_mib), "--state-dir", str(state),
                         "--checksum", checksum])  # fmt: skip
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the CLI failed with status {code}")
    s3_client(stack).delete_object(Bucket=BUCKET, Key=json.loads(out.getvalue())["key"])
    return seconds


def run_s3transfer(
    stack: LocalStack, path: Path, concurrency: int, part_mib: int, checksums: bool
) -> float:
    s3 = s3_client(stack, checksums)
    config = TransferConfig(multipart_threshold=part_mib * MiB, multipart_chunksize=part_mib * MiB,
                            max_concurrency=concurrency)  # fmt: skip
    started = time.perf_counter()
    s3.upload_file(str(path), BUCKET, "bench/s3transfer.bin", Config=config)
    seconds = time.perf_counter() - started
    s3.delete_object(Bucket=BUCKET, Key="bench/s3transfer.bin")
    return seconds


RATIOS = [
    ("CLI sha256 / s3transfer crc32", "cli sha256", "s3transfer crc32", "target >= 0.90"),
    ("CLI none / s3transfer none", "cli none", "s3transfer none", "target >= 0.90"),
    ("CLI md5 / CLI none", "cli md5", "cli none", "MD5's cost: same server work"),
    ("CLI sha256 / CLI none", "cli sha256", "cli none",
     "moto: 'none' also pays a full-object CRC"),
]  # fmt: skip


def hash_rate(algorithm: str, data: bytes, rounds: int = 5) -> float:
    """MiB/s of hashlib's ``algorithm`` on one core: the CPU a checksum adds per byte."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hashlib.new(algorithm, data).digest()
        times.append(time.perf_counter() - started)
    return len(data) / MiB / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_throughput")
    # 512 MiB: moto takes about 13 s to complete a 1 GiB upload that named no checksum
    # algorithm (it computes a full-object CRC), which under load overruns the API's
    # completion timeout (chalicelib/core/s3.py) in the "none" runs.
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--part-mib", type=int, default=8)
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, local_stack() as stack:
        path = make_file(Path(tmp), size)
        runs: dict[str, Callable[[], float]] = {}
        for mode in ("sha256", "none", "md5"):
            runs[f"cli {mode}"] = partial(
                run_cli, stack, path, args.concurrency, args.part_mib, Path(tmp), mode
            )
        for name, on in (("crc32", True), ("none", False)):
            runs[f"s3transfer {name}"] = partial(
                run_s3transfer, stack, path, args.concurrency, args.part_mib, on
            )
        for n in range(args.rounds):
            for name, run in runs.items():
                times.setdefault(name, []).append(run())
            print(f"  round {n + 1}: " + "  ".join(
                f"{name} {size / MiB / t[-1]:.0f}" for name, t in times.items()) + " MiB/s",
                file=sys.stderr)  # fmt: skip
    rate = {name: size / MiB / statistics.median(t) for name, t in times.items()}
    print(f"upload {args.size_mib} MiB, {args.part_mib} MiB parts, concurrency "
          f"{args.concurrency}, median of {args.rounds}:")  # fmt: skip
    for name, value in rate.items():
        print(f"  {name:<32}{value:8.1f} MiB/s")
    for label, a, b, note in RATIOS:
        print(f"  {label:<32}{rate[a] / rate[b]:8.2f}x   ({note})")
    data = os.urandom(64 * MiB)
    sha256, md5 = hash_rate("sha256", data), hash_rate("md5", data)
    print(f"  {'hashlib sha256, one core':<32}{sha256:8.0f} MiB/s")
    print(f"  {'hashlib md5, one core':<32}{md5:8.0f} MiB/s")
    print(f"  {'sha256 / md5':<32}{sha256 / md5:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
