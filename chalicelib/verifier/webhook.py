"""The optional webhook: each verdict POSTed to UPLOAD_WEBHOOK_URL, signed with HMAC-SHA256.

The body is JSON, ``{"type": "Upload Verified" | "Upload Rejected", "detail": {...}}``
(the EventBridge event's detail). The header ``X-Upload-Signature: t=<unix time>,v1=<hex>``
carries the HMAC-SHA256 of ``<t>.<body>`` under the key, so the receiver can check both
the sender and the age (refuse a ``t`` older than a few minutes: a replay).

The key is read on first use from where UPLOAD_WEBHOOK_SECRET points: an SSM parameter
(SecureString, decrypted) or a Secrets Manager secret (by ARN). It never sits in the
template or the environment. Delivery is tried :data:`ATTEMPTS` times, :data:`TIMEOUT`
seconds each, with backoff, within :data:`BUDGET` seconds in all, on a connection error, a
429 or a 5xx; a 3xx is not followed. A failure after that, or no key, is logged and does
not undo the verdict (the EventBridge event is the durable signal).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

ATTEMPTS = 3
TIMEOUT = 5.0  # one attempt, all in (a thread is abandoned after it)
BACKOFF = (1.0, 2.0)  # before the 2nd and 3rd attempts
BUDGET = 20.0  # all attempts and backoff: 3 x 5 s + 3 s, and never more
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a place to go: following it would resend the signature,
    as a GET without the body, to wherever the receiver points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Webhook:
    """Sends verdicts to ``url``; ``key`` gives the signing key (read once, then kept for
    the container's life: a rotated key takes effect at the next cold start).

    :meth:`send` never raises and never takes longer than ``budget`` seconds, whatever
    the receiver does (a thread per attempt, abandoned when its time is up: a slow
    receiver that drips bytes would defeat a socket timeout)."""

    def __init__(
        self,
        url: str,
        key: Callable[[], bytes],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
        budget: float = BUDGET,
    ) -> None:
        self._url = url
        self._key = key
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout
        self._budget = budget

    def send(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """POST the verdict; True once the receiver answered 2xx."""
        body = json.dumps({"type": detail_type, "detail": detail}).encode()
        started = time.monotonic()
        try:
            key = self._key()
        except Exception as exc:
            return _undelivered(f"no signing key ({type(exc).__name__})", detail)
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._sleep(BACKOFF[attempt - 1])
            remaining = self._budget - (time.monotonic() - started)
            if remaining <= 0:
                break
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: signature(key, int(self._clock()), body)}  # fmt: skip
            request = urllib.request.Request(self._url, data=body, method="POST", headers=headers)  # noqa: S310
            status, problem = _attempt(request, min(self._timeout, remaining))
            if status is not None and 200 <= status < 300:
                return True
            if status is not None and status != 429 and status < 500:
                break  # the receiver refused this body: sending it again changes nothing
        return _undelivered(problem, detail)


def _attempt(request: urllib.request.Request, seconds: float) -> tuple[int | None, str]:
    """One POST, given at most ``seconds`` in all: (its status or None, what went wrong)."""
    outcome: dict[str, Any] = {}

    def post() -> None:
        try:
            with _OPENER.open(request, timeout=seconds) as answer:
                outcome["status"] = answer.status
        except urllib.error.HTTPError as exc:
            outcome["status"] = exc.code
        except Exception as exc:
            outcome["problem"] = type(exc).__name__

    worker = threading.Thread(target=post, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return None, f"no answer within {seconds:g} s"
    status = outcome.get("status")
    return status, f"HTTP {status}" if status is not None else outcome.get("problem", "")


def _undelivered(problem: str, detail: dict[str, Any]) -> bool:
    record = {"level": "ERROR", "webhook": "undelivered", "problem": problem,
              "UUID": detail.get("UUID")}  # fmt: skip
    sys.stdout.write(json.dumps(record) + "\n")
    return False
