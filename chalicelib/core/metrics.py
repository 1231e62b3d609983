"""CloudWatch metrics carried in the request's log line (Embedded Metric Format).

CloudWatch Logs turns a JSON line with an ``_aws`` member into metrics, so the service
needs no SDK call, no agent and no dependency: the request log (chalicelib/core/logs.py)
carries them. Per request, in the ``presigned-upload`` namespace:

- ``requests`` (Count) and ``latency_ms`` (Milliseconds), by service, route and status
  class (``2xx``, ``4xx``, ``5xx``);
- ``errors`` (Count), by service and error code (the answer's ``Code``);
- ``urls_issued`` (every presigned URL or POST policy signed), ``bytes_declared`` (the
  sizes clients declared when asking for them), ``multipart_completions``,
  ``cold_starts`` and ``quota_fail_open`` (a URL issued uncounted because the quota
  table did not answer, with UPLOAD_QUOTA_FAIL_OPEN), by service, on the lines where
  they are not zero.

The services count with :func:`add` while a request runs; the log middleware opens the
request's counters with :func:`begin` and writes them. The directives are JSON built once
per combination of metrics present, so a line costs one cached lookup and a string join.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any, Literal

NAMESPACE = "presigned-upload"
# The metrics a service may add, with their units, in the order they are declared.
COUNTED = {
    "urls_issued": "Count",
    "bytes_declared": "Bytes",
    "multipart_completions": "Count",
    "cold_starts": "Count",
    "quota_fail_open": "Count",
}
REQUEST_METRICS = [{"Name": "requests", "Unit": "Count"},
                   {"Name": "latency_ms", "Unit": "Milliseconds"}]  # fmt: skip
REQUEST_DIMENSIONS = ["service", "route", "status_class"]

# The counters of the request being handled. A context variable, so that each of
# `chalice local`'s threads has its own; Lambda handles one request at a time.
_CURRENT: ContextVar[dict[str, int]] = ContextVar("request_metrics")


def begin() -> dict[str, int]:
    """Start counting for a new request; the returned counters are what :func:`add` fills."""
    counters: dict[str, int] = {}
    _CURRENT.set(counters)
    return counters


Counted = Literal[
    "urls_issued", "bytes_declared", "multipart_completions", "cold_starts", "quota_fail_open"
]


def add(name: Counted, value: int = 1) -> None:
    """Count ``value`` of ``name`` (one of :data:`COUNTED`) for the current request; a
    no-op outside one (a unit test calling a service directly)."""
    counters = _CURRENT.get(None)
    if counters is not None:
        counters[name] = counters.get(name, 0) + value


_DIRECTIVES: dict[tuple[tuple[str, ...], bool], str] = {}


def directives(counted: tuple[str, ...], error: bool) -> str:
    """The JSON of the ``CloudWatchMetrics`` array for a line holding the request metrics,
    the ``counted`` ones, and ``errors`` when ``error``; built once per combination."""
    found = _DIRECTIVES.get((counted, error))
    if found is None:
        found = _DIRECTIVES[counted, error] = json.dumps(_directives(counted, error),
                                                         separators=(",", ":"))  # fmt: skip
    return found


def _directives(counted: tuple[str, ...], error: bool) -> list[dict[str, Any]]:
    listed = [_directive([REQUEST_DIMENSIONS], REQUEST_METRICS)]
    if counted:
        metrics = [{"Name": name, "Unit": COUNTED[name]} for name in counted]
        listed.append(_directive([["service"]], metrics))
    if error:
        listed.append(_directive([["service", "error"]], [{"Name": "errors", "Unit": "Count"}]))
    return listed


def _directive(dimensions: list[list[str]], metrics: list[dict[str, str]]) -> dict[str, Any]:
    return {"Namespace": NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}


def emf_prefix(timestamp_ms: int, counted: tuple[str, ...], error: bool) -> str:
    """The start of an EMF line: ``{"_aws":{...},`` then the record's own members follow."""
    return (
        f'{{"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":{directives(counted, error)}}},'
    )
