"""A local stand-in for GuardDuty Malware Protection for S3, on `make run`'s event path.

It proves the wiring, not detection. It sees the same "Object Created" events GuardDuty
would, under the upload prefix, and does what GuardDuty does after a scan: it tags the
object ``GuardDutyMalwareScanStatus=<result>`` (keeping its other tags) and then puts the
same event on the bus (``source: aws.guardduty``, ``detail-type: GuardDuty Malware
Protection Object Scan Result``), which the verifier's rule takes as in AWS.

What it "detects":

- the EICAR test file (the 68 bytes every antivirus flags, optionally followed by
  whitespace, at most 128 bytes in all): ``THREATS_FOUND``;
- with ``CLAMD_SOCKET`` set to a running clamd's Unix socket, whatever clamd finds
  (``INSTREAM``); clamd unreachable or failing is ``FAILED``, as a broken scan would be;
- objects over :data:`MAX_SCAN_BYTES`: ``UNSUPPORTED``, as GuardDuty answers beyond its
  size limit;
- everything else: ``NO_THREATS_FOUND``. No real malware is recognised without clamd.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from datetime import UTC, datetime
from typing import Any

from chalicelib.verifier import GUARDDUTY_TAG, SCAN_DETAIL_TYPE, SCAN_SOURCE

RULE = "presigned-upload-stand-in-scanner"  # its rule, and its queue (events.wire)
# Kept small: a local stand-in reads the whole object (GuardDuty's limit is 100 GB).
MAX_SCAN_BYTES = 64 * 1024 * 1024
# A scan takes GuardDuty seconds; the stand-in takes one, so that a page polling the
# status sees `scanning` before the verdict, as it would in AWS.
SCAN_SECONDS = 1.0
# The EICAR test file, in two halves so that no antivirus flags this source file.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + rb"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "EICAR-Test-File (not a virus)"
CLAMD_TIMEOUT = 30.0
# scanStatus for each result: UNSUPPORTED and ACCESS_DENIED are SKIPPED.
SCAN_STATUS = {"NO_THREATS_FOUND": "COMPLETED", "THREATS_FOUND": "COMPLETED", "FAILED": "FAILED"}
PLAN = "arn:aws:guardduty:us-east-1:000000000000:malware-protection-plan/local-stand-in"


def is_eicar(data: bytes) -> bool:
    """The EICAR file as its definition allows it: the 68 bytes first, then only
    whitespace, 128 bytes at most."""
    return len(data) <= 128 and data.startswith(EICAR) and not data[len(EICAR) :].strip()


def scan(data: bytes, clamd: str | None = None) -> tuple[str, list[str]]:
    """The scan result (GuardDuty's ``scanResultStatus``) and the threats' names."""
    if is_eicar(data):
        return "THREATS_FOUND", [EICAR_NAME]
    if clamd:
        return _clamd(data, clamd)
    return "NO_THREATS_FOUND", []


def _clamd(data: bytes, path: str) -> tuple[str, list[str]]:
    """clamd's INSTREAM: chunks of <length><bytes>, a zero length, then one reply line
    (``stream: OK`` or ``stream: <name> FOUND``)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CLAMD_TIMEOUT)
            conn.connect(path)
            conn.sendall(b"zINSTREAM\0")
            for start in range(0, len(data), 1 << 20):
                chunk = data[start : start + (1 << 20)]
                conn.sendall(struct.pack(">I", len(chunk)) + chunk)
            conn.sendall(struct.pack(">I", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                got = conn.recv(4096)
                if not got:
                    break
                reply += got
    except OSError as exc:
        _say(f"clamd at {path} failed ({exc}): scan result FAILED")
        return "FAILED", []
    text = reply.rstrip(b"\0").decode(errors="replace")
    if text.endswith(" FOUND"):
        return "THREATS_FOUND", [text.removeprefix("stream: ").removesuffix(" FOUND")]
    if text.endswith(": OK"):
        return "NO_THREATS_FOUND", []
    _say(f"clamd answered {text[:200]!r}: scan result FAILED")
    return "FAILED", []


def scan_object(s3: Any, events: Any, bucket: str, key: str, clamd: str | None) -> str | None:
    """Scan one object as GuardDuty would: its bytes, then the tag, then the event; the
    result, or None if the object is gone."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        threats: list[str] = []
        if head["ContentLength"] > MAX_SCAN_BYTES:
            status = "UNSUPPORTED"
        else:
            # IfMatch: the bytes scanned are those of the ETag the event will name.
            got = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])
            status, threats = scan(got["Body"].read(), clamd)
        tag(s3, bucket, key, status)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "412", "PreconditionFailed"):
            return None
        raise
    events.put_events(Entries=[scan_event(bucket, key, head["ETag"], status, threats)])
    return status


def tag(s3: Any, bucket: str, key: str, status: str) -> None:
    """Tag the object with the result, keeping its other tags, as GuardDuty does."""
    held = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    tagged = [t for t in held if t["Key"] != GUARDDUTY_TAG] + [
        {"Key": GUARDDUTY_TAG, "Value": status}
    ]
    s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tagged})


def scan_event(bucket: str, key: str, etag: str, status: str,
               threats: list[str]) -> dict[str, Any]:  # fmt: skip
    """The PutEvents entry of GuardDuty's scan result (its documented shape)."""
    detail = {
        "schemaVersion": "1.0",
        "scanStatus": SCAN_STATUS.get(status, "SKIPPED"),
        "resourceType": "S3_OBJECT",
        "s3ObjectDetails": {"bucketName": bucket, "objectKey": key, "eTag": etag.strip('"'),
                            "versionId": None, "s3Throttled": False},
        "scanResultDetails": {"scanResultStatus": status,
                              "threats": [{"name": t} for t in threats] or None},
    }  # fmt: skip
    return {"Source": SCAN_SOURCE, "DetailType": SCAN_DETAIL_TYPE, "Detail": json.dumps(detail),
            "Resources": [PLAN], "Time": datetime.now(UTC)}  # fmt: skip


def clamd_socket() -> str | None:
    """CLAMD_SOCKET, if set and there: a real engine for the stand-in."""
    path = os.environ.get("CLAMD_SOCKET", "").strip()
    return path if path and os.path.exists(path) else None


def _say(what: str) -> None:
    print(f"devstack: stand-in scanner: {what}", file=sys.stderr, flush=True)
