"""A strict local S3 for `make run S3=strict`: LocalStack's S3 with SigV4 validation on.

moto (the default) checks no signature, expiry, signed header or checksum, answers a
CORS preflight on an existing key with 403, and its form-POST answer lacks ETag and
Location. LocalStack's S3 refuses a tampered or expired URL, a header that differs from
the signed one, a wrong Content-MD5 or x-amz-checksum-sha256, and a completion whose
x-amz-mp-object-size is wrong, as AWS does; and it sends S3's events to its EventBridge,
so `make run S3=strict` runs the verifier on the same path as on moto. It checks a POST
policy's conditions, but not its signature (tests/unit/test_sigv4.py proves ours
byte-equal to botocore's instead), and it accepts form fields the policy does not name,
which AWS refuses.

LocalStack 4.14 needs Python 3.13. On first use it is installed, from the hash-locked
requirements/strict-s3.txt, into a venv of its own under .cache/strict-s3 (about a
minute); the project's own .venv never holds it.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from infra import pythons

PROJECT = Path(__file__).resolve().parent.parent
LOCK = PROJECT / "requirements" / "strict-s3.txt"
CACHE = PROJECT / ".cache" / "strict-s3"
PYTHON_VERSION = (3, 13)


class StrictS3Unavailable(RuntimeError):
    """The strict S3 cannot be installed here; the message says what is missing."""


def find_python(candidates: list[str] | None = None) -> str:
    """A Python 3.13 interpreter, or StrictS3Unavailable naming what to install."""
    found = pythons.find_python(PYTHON_VERSION, candidates)
    if found is None:
        raise StrictS3Unavailable(
            "S3=strict needs Python 3.13 for LocalStack, and none was found (looked for "
            "python3.13 on PATH and in ~/.pyenv); install it (e.g. `pyenv install 3.13`, or "
            "your OS's python3.13 package), or use the default S3=moto"
        )
    return found


def installed_python(cache: Path = CACHE, lock: Path = LOCK) -> Path:
    """The strict S3's own interpreter, installing LocalStack first if it is missing or
    its lock file changed since."""
    python = cache / "bin" / "python"
    stamp = cache / ".installed"
    wanted = lock.read_bytes()
    if stamp.exists() and stamp.read_bytes() == wanted and python.exists():
        return python
    interpreter = find_python()
    print(f"devstack: installing the strict S3 (LocalStack) into {cache} ...", flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    steps = [
        [interpreter, "-m", "venv", str(cache)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "-r", str(lock)],
    ]  # fmt: skip
    for step in steps:
        run = subprocess.run(step, capture_output=True, text=True)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            raise StrictS3Unavailable(
                f"installing the strict S3 failed ({' '.join(step[:3])}): {' | '.join(tail)}"
            )
    stamp.write_bytes(wanted)
    return python


def command(python: Path) -> list[str]:
    return [str(python), "-m", "localstack.runtime.main"]


def environment(base: Mapping[str, str], host: str, port: int, data_dir: str) -> dict[str, str]:
    """LocalStack's settings: S3, with EventBridge and SQS for the verifier's event path
    (S3's "Object Created" events -> a rule -> a queue, as on moto), signatures validated,
    nothing persisted or fetched."""
    return {
        **base,
        "SERVICES": "s3,events,sqs",
        "GATEWAY_LISTEN": f"{host}:{port}",
        "LOCALSTACK_HOST": f"{host}:{port}",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        "PERSISTENCE": "0",
        "FILESYSTEM_ROOT": data_dir,
    }


def data_dir() -> str:
    """A fresh directory for LocalStack's files; removed when the launcher exits."""
    path = tempfile.mkdtemp(prefix="strict-s3-")
    atexit.register(shutil.rmtree, path, True)
    return path
