"""Upload throughput: the CLI (`presigned-upload`) against boto3's `upload_file`
(s3transfer), the same 1 GiB file, the same local S3, the same part size and concurrency,
alternating in one run. Prints medians and the ratio.

Both clients are told to send no flexible checksums. moto computes a full-object CRC on
completion unless the upload was created naming a checksum algorithm, which s3transfer
does by default and the API cannot (browsers and Uppy send no per-part checksums); so
without this, the comparison would measure moto's completion, not the clients. The CLI
still sends Content-MD5 with every part (S3 checks each part's bytes); s3transfer sends
none.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
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


def s3_client(stack: LocalStack):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=stack.s3, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(request_checksum_calculation="when_required",
                      max_pool_connections=32),
    )  # fmt: skip


def run_cli(stack: LocalStack, path: Path, concurrency: int, part_mib: int, state: Path) -> float:
    out = io.StringIO()
    started = time.perf_counter()
    with redirect_stdout(out):
        code = cli_main(["upload", str(path), "--api", stack.api, "--json", "--no-progress",
                         "--concurrency", str(concurrency), "--part-size", str(part_mib),
                         "--threshold", str(part_mib), "--state-dir", str(state)])  # fmt: skip
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the CLI failed with status {code}")
    s3_client(stack).delete_object(Bucket=BUCKET, Key=json.loads(out.getvalue())["key"])
    return seconds


def run_s3transfer(stack: LocalStack, path: Path, concurrency: int, part_mib: int) -> float:
    s3 = s3_client(stack)
    config = TransferConfig(multipart_threshold=part_mib * MiB, multipart_chunksize=part_mib * MiB,
                            max_concurrency=concurrency)  # fmt: skip
    started = time.perf_counter()
    s3.upload_file(str(path), BUCKET, "bench/s3transfer.bin", Config=config)
    seconds = time.perf_counter() - started
    s3.delete_object(Bucket=BUCKET, Key="bench/s3transfer.bin")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_throughput")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--part-mib", type=int, default=8)
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory() as tmp, local_stack() as stack:
        path = make_file(Path(tmp), size)
        cli, ref = [], []
        for n in range(args.rounds):
            cli.append(run_cli(stack, path, args.concurrency, args.part_mib, Path(tmp)))
            ref.append(run_s3transfer(stack, path, args.concurrency, args.part_mib))
            print(f"  round {n + 1}: cli {size / MiB / cli[-1]:6.1f} MiB/s   "
                  f"s3transfer {size / MiB / ref[-1]:6.1f} MiB/s", file=sys.stderr)  # fmt: skip
    cli_rate = size / MiB / statistics.median(cli)
    ref_rate = size / MiB / statistics.median(ref)
    print(f"upload {args.size_mib} MiB, {args.part_mib} MiB parts, concurrency "
          f"{args.concurrency}, median of {args.rounds}:")  # fmt: skip
    print(f"  {'uploader CLI':<24}{cli_rate:8.1f} MiB/s")
    print(f"  {'boto3 upload_file':<24}{ref_rate:8.1f} MiB/s")
    print(f"  {'ratio CLI / s3transfer':<24}{cli_rate / ref_rate:8.2f}x   (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
