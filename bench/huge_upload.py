"""The done-when of multipart: a 6 GiB file (over S3's 5 GiB single-PUT limit) goes
through the API with the CLI, survives a killed run, is resumed, and arrives identical.

    python -m bench.huge_upload --s3-endpoint http://127.0.0.1:4599   # `make bench-huge`

It needs an S3 that keeps objects on disk: moto holds a completed upload in memory
several times over, which 6 GiB would exhaust. A local strict S3 (LocalStack, which also
verifies every part URL's signature) or MinIO does. The file is sparse, with 1 MiB of
random bytes every 64 MiB, so that parts differ. Identity is checked part by part: the
object's multipart ETag is the MD5 of the parts' MD5s, recomputed here from the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from bench.stack import PROJECT, local_stack

MiB = 1024**2
GiB = 1024**3
BUCKET = "uploads-local"


def sparse_file(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.truncate(size)
        for offset in range(0, size, 64 * MiB):
            f.seek(offset)
            f.write(os.urandom(MiB))


def expected_etag(path: Path, part_size: int) -> str:
    """S3's ETag for a multipart upload of this file: MD5 of the parts' MD5s, "-N"."""
    digests = []
    with path.open("rb") as f:
        while chunk := f.read(part_size):
            digests.append(hashlib.md5(chunk).digest())  # noqa: S324 (S3's ETag)
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'  # noqa: S324


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.huge_upload")
    parser.add_argument("--s3-endpoint", required=True, help="an S3 that stores on disk")
    parser.add_argument("--size-gib", type=int, default=6)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--kill-at", type=float, default=0.4, help="fraction of parts")
    args = parser.parse_args(argv)
    size, part = args.size_gib * GiB, args.part_mib * MiB
    parts = -(-size // part)
    s3 = boto3.client("s3", endpoint_url=args.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, local_stack(args.s3_endpoint) as stack:
        path = Path(tmp) / "huge.bin"
        sparse_file(path, size)
        command = [sys.executable, "-m", "presigned_upload", "upload", str(path),
                   "--api", stack.api,
                   "--part-size", str(args.part_mib), "--state-dir", tmp, "--json",
                   "--no-progress"]  # fmt: skip
        started = time.monotonic()
        first = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, text=True)
        held = 0
        while first.poll() is None and held < parts * args.kill_at:
            uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
            for upload in uploads:
                listed = s3.list_parts(Bucket=BUCKET, Key=upload["Key"],
                                       UploadId=upload["UploadId"], MaxParts=1000)  # fmt: skip
                held = len(listed.get("Parts", []))
            time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_after = time.monotonic() - started
        print(f"killed the CLI after {killed_after:.0f} s with {held} of {parts} parts in S3")
        resumed = subprocess.run([*command, "--resume"], cwd=PROJECT, capture_output=True,
                                 text=True, check=True)  # fmt: skip
        result = json.loads(resumed.stdout)
        total = time.monotonic() - started
        head = s3.head_object(Bucket=BUCKET, Key=result["key"])
        etag = expected_etag(path, part)
        print(f"resumed: {result['resumed_parts']} parts kept, "
              f"{parts - result['resumed_parts']} uploaded; {total:.0f} s in all")  # fmt: skip
        print(f"size {head['ContentLength']} (file {size}); ETag {head['ETag']} "
              f"(expected {etag})")  # fmt: skip
        ok = head["ContentLength"] == size and head["ETag"] == etag
        print("identical" if ok else "MISMATCH")
        s3.delete_object(Bucket=BUCKET, Key=result["key"])
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
