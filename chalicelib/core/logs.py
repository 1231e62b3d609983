"""One JSON line per request, and nothing secret in it.

A line holds what an operator needs to follow a request: its id, method, route, status,
latency, the caller's principal and the upload's UUID and key. It never holds a signed
URL, a signature, a POST policy, credentials, a query string, a body or a header (an
``Authorization`` header carries a token): the line is built field by field from values
that are not secret, never from the request or response as a whole.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from chalicelib.core.errors import ConfigError
from chalicelib.core.metrics import emf_prefix

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
# emf: the JSON line with its metrics, for CloudWatch (Lambda); text: a short line for a
# person watching `make run`, with no metrics.
LOG_FORMATS = ("emf", "text")
# Built once: json.dumps with any non-default option builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def log_level(environ: Mapping[str, str]) -> int:
    """LOG_LEVEL (default INFO): successful requests are INFO, 4xx WARNING, 5xx ERROR."""
    value = environ.get("LOG_LEVEL", "INFO").upper()
    if value not in LEVELS:
        raise ConfigError(
            f"LOG_LEVEL={environ.get('LOG_LEVEL')!r} is invalid; allowed: {', '.join(LEVELS)}"
        )
    return LEVELS[value]


def log_format(environ: Mapping[str, str]) -> str:
    """LOG_FORMAT (default emf): what each request's line looks like."""
    value = environ.get("LOG_FORMAT", "emf").lower()
    if value not in LOG_FORMATS:
        raise ConfigError(
            f"LOG_FORMAT={environ.get('LOG_FORMAT')!r} is invalid; allowed: emf, text"
        )
    return value


def status_level(status: int) -> str:
    return "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"


class RequestLog:
    """Writes request records as JSON lines to ``stream`` (Lambda sends stdout to
    CloudWatch Logs), from ``level`` up, each carrying its metrics (chalicelib/core/metrics.py).

    A request below ``level`` still counts: its line is cut to the metrics and their
    dimensions (no principal, UUID or key), so LOG_LEVEL never changes what is measured.
    The first line a container writes says ``"cold_start": true``.
    """

    def __init__(
        self, level: int, service: str, stream: TextIO | None = None, text: bool = False
    ) -> None:
        self._level = level
        self._service = service
        self._stream = stream
        self._cold = True
        self._tails: dict[int, str] = {}
        if text:
            self.write = self._write_text  # type: ignore[method-assign]

    def _write_text(self, record: dict[str, Any], counters: dict[str, int]) -> None:
        """LOG_FORMAT=text: ``INFO GET /put-url 200 0.412 ms UUID=... key=...``."""
        status = int(record.get("status", 0))
        level = status_level(status)
        if LEVELS[level] < self._level:
            return
        words = [level, str(record.get("method")), str(record.get("route") or "unknown"),
                 str(status), f"{record.get('latency_ms')} ms"]  # fmt: skip
        for name in ("principal", "UUID", "key", "error"):
            if record.get(name) is not None:
                words.append(f"{name}={record[name]}")
        (self._stream or sys.stdout).write(" ".join(words) + "\n")

    def write(self, record: dict[str, Any], counters: dict[str, int]) -> None:
        """Write ``record`` (from :func:`request_record`) with ``counters`` (from
        :func:`chalicelib.core.metrics.begin`, as the request's services filled them)."""
        status = int(record.get("status", 0))
        level = status_level(status)
        cold = self._cold
        if cold:
            self._cold = False
            counters["cold_starts"] = 1
        error = record.get("error")
        if LEVELS[level] < self._level:
            record = {"route": record.get("route"), "latency_ms": record.get("latency_ms")}
        else:
            record["level"] = level
        if record.get("route") is None:
            record["route"] = "unknown"
        # In the order the services counted (each route always counts in the same order).
        record.update(counters)
        if error is not None:
            record["error"] = error
            record["errors"] = 1
        prefix = emf_prefix(int(time.time() * 1000), tuple(counters), error is not None)
        # The members that are the same on every line of a status class are encoded once.
        tail = None if cold else self._tails.get(status // 100)
        if tail is None:
            tail = self._tail(status // 100, cold)
        (self._stream or sys.stdout).write(prefix + _ENCODE(record)[1:-1] + tail)

    def _tail(self, status_class: int, cold: bool) -> str:
        members = {"cold_start": cold, "service": self._service, "requests": 1,
                   "status_class": STATUS_CLASSES.get(status_class, "other")}  # fmt: skip
        tail = "," + _ENCODE(members)[1:] + "\n"
        if not cold:
            self._tails[status_class] = tail
        return tail


STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


# Fields taken from the request are cut, so that no line grows past about 1 KB whatever
# a caller sends (a 5,000-character path id is still a 400, logged in 64 characters).
MAX_FIELD = 300
MAX_UUID_FIELD = 64


def _bounded(value: Any, limit: int) -> Any:
    return value[:limit] if isinstance(value, str) else value


def request_record(
    context: Mapping[str, Any],
    method: str,
    status: int,
    latency_ms: float,
    principal: str | None,
    body: Any,
    upload_id: str | None,
    lambda_request_id: str | None = None,
) -> dict[str, Any]:
    """The fields of one line. From a response body only ``UUID`` and ``key`` are taken
    (and an error's ``Code``), never the URL or fields beside them."""
    found = body if isinstance(body, Mapping) else {}
    return {
        "request_id": context.get("requestId"),
        "lambda_request_id": lambda_request_id,
        "method": method,
        "route": context.get("resourcePath"),
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "principal": _bounded(principal, MAX_FIELD),
        "UUID": _bounded(found.get("UUID") or upload_id, MAX_UUID_FIELD),
        "key": found.get("key"),
        **({"error": found.get("Code")} if status >= 400 else {}),
    }


def log_s3_error(code: str, operation: str, status: int, stream: TextIO | None = None) -> None:
    """One ERROR line for an S3 refusal that the deployment must fix (never a URL)."""
    record = {"level": "ERROR", "s3_error": code[:64], "operation": operation[:64],
              "s3_status": status}  # fmt: skip
    (stream or sys.stdout).write(_ENCODE(record) + "\n")


def log_quota_fail_open(reason: str, stream: TextIO | None = None) -> None:
    """One ERROR line for a URL issued uncounted (UPLOAD_QUOTA_FAIL_OPEN): the quota
    table did not answer. Never the caller, the URL or the key."""
    record = {"level": "ERROR", "quota": "fail-open", "reason": reason[:200]}
    (stream or sys.stdout).write(_ENCODE(record) + "\n")


def log_quota_release_deferred(reason: str, stream: TextIO | None = None) -> None:
    """One WARNING line for an aborted upload whose reservation could not be given back
    in the time left (it is when its URL expires). Never the caller or the key."""
    record = {"level": "WARNING", "quota": "release-deferred", "reason": reason[:200]}
    (stream or sys.stdout).write(_ENCODE(record) + "\n")
