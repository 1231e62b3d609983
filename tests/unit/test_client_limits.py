"""The client shares no code with the server, only S3's limits: they must agree."""

from __future__ import annotations

import subprocess
import sys

from chalicelib.core import settings
from chalicelib.multipart import service as multipart
from presigned_upload import limits
from tests.support import PROJECT


def test_client_and_server_agree_on_s3_limits():
    assert (
        limits.MiB,
        limits.MAX_PARTS,
        limits.MIN_PART_SIZE,
        limits.MAX_PART_SIZE,
        limits.MAX_OBJECT_BYTES,
        limits.MAX_BATCH,
    ) == (
        multipart.MiB,
        multipart.MAX_PARTS,
        multipart.MIN_PART_SIZE,
        multipart.MAX_PART_SIZE,
        settings.MAX_OBJECT_BYTES,
        multipart.MAX_BATCH,
    )


def test_the_client_imports_nothing_from_the_server():
    script = (
        "import sys, presigned_upload, presigned_upload.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('chalicelib', 'chalice', 'app', 'boto3', 'botocore')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT / "client", capture_output=True, text=True
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "[]\n", "")
