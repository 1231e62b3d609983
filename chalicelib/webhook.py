"""The optional webhook: each verdict POSTed to UPLOAD_WEBHOOK_URL, signed with HMAC-SHA256.

The body is JSON, ``{"type": "Upload Verified" | "Upload Rejected", "detail": {...}}``
(the EventBridge event's detail). The header ``X-Upload-Signature: t=<unix time>,v1=<hex>``
carries the HMAC-SHA256 of ``<t>.<body>`` under the key, so the receiver can check both
the sender and the age (refuse a ``t`` older than a few minutes: a replay).

The key is read on first use from where UPLOAD_WEBHOOK_SECRET points: an SSM parameter
(SecureString, decrypted) or a Secrets Manager secret (by ARN). It never sits in the
template or the environment. Delivery is tried :data:`ATTEMPTS` times, :data:`TIMEOUT`
seconds each, with backoff, on a connection error, a 429 or a 5xx; a failure after that is
logged and does not undo the verdict (the EventBridge event is the durable signal).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

ATTEMPTS = 3
TIMEOUT = 5.0
BACKOFF = (1.0, 2.0)  # before the 2nd and 3rd attempts: 3 x 5 s + 3 s in the worst case
SIGNATURE_HEADER = "X-Upload-Signature"


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def read_secret(name: str, client: Callable[[str], Any]) -> bytes:
    """The key at ``name``: a Secrets Manager ARN, else an SSM parameter name."""
    if name.startswith("arn:") and ":secretsmanager:" in name:
        value = client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    else:
        value = client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    return str(value).encode()


class Webhook:
    """Sends verdicts to ``url``; ``key`` gives the signing key (read once, then kept)."""

    def __init__(
        self,
        url: str,
        key: Callable[[], bytes],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._key = key
        self._sleep = sleep
        self._clock = clock

    def send(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """POST the verdict; True once the receiver answered 2xx."""
        body = json.dumps({"type": detail_type, "detail": detail}).encode()
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(BACKOFF[attempt - 1])
            request = urllib.request.Request(  # noqa: S310 (https, or loopback: settings.py)
                self._url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature(self._key(), int(self._clock()), body),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT):  # noqa: S310
                    return True
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # the receiver refused this body: sending it again changes nothing
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                problem = type(exc).__name__
        record = {"level": "ERROR", "webhook": "undelivered", "problem": problem,
                  "UUID": detail.get("UUID")}  # fmt: skip
        sys.stdout.write(json.dumps(record) + "\n")
        return False
