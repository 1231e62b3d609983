"""Waiting for the verdict of the stage's verifier (type check, malware scan) on an upload:
GET /uploads/{uuid} until it answers ``verified`` or ``rejected``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from presigned_upload.api import Api

SETTLED = ("verified", "rejected")
DEFAULT_TIMEOUT = 120.0  # seconds
INTERVAL = 1.0  # seconds between two questions


def wait_for_verdict(api: Api, upload_id: str, timeout: float = DEFAULT_TIMEOUT,
                     interval: float = INTERVAL,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:  # fmt: skip
    """The upload's status once ``verified`` or ``rejected``; else, asked a last time at
    ``timeout`` seconds, the status as it is (``uploaded`` or ``scanning``: not judged
    yet; on a stage without UPLOAD_VERIFY, never). ApiError if the API refuses."""
    deadline = clock() + timeout
    while True:
        status = api.status(upload_id)
        left = deadline - clock()
        if status.get("status") in SETTLED or left <= 0:
            return status
        sleep(min(interval, left))
