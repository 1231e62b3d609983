"""DynamoDB's JSON API, called without the AWS SDK.

A cold ``GET /put-url`` on a stage with quotas makes one or two DynamoDB calls; importing
botocore and building a client for them would cost more than the rest of the request
at Lambda's share of a CPU (docs/benchmarks.md). DynamoDB's API is one JSON POST per
operation, signed with SigV4 in the ``Authorization`` header
(:func:`chalicelib.core.sigv4.authorization_headers`, compared with botocore's in
tests/unit/test_sigv4.py), so this module sends it with ``http.client`` on one
keep-alive connection per container.

Time is bounded: each attempt has a 1 s connect timeout and 2 s to read the whole answer
(:class:`_AnswerSocket`: a socket's timeout bounds each read only, and an answer dripped
a byte at a time would never end), and a call makes at most :data:`ATTEMPTS` attempts
(a second one only after a throttle, a 5xx or a lost connection), so
:data:`CALL_WORST_CASE` bounds a call; :class:`Budget` refuses a call that might end past
an operation's budget. (Resolving DynamoDB's name is left to the system resolver and its
own timeouts, outside this bound.)
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.core.credentials import CredentialSource
from chalicelib.core.errors import ConfigError, QuotaBusy, QuotaUnavailable, ServiceError
from chalicelib.core.sigv4 import authorization_headers, dns_suffix

TARGET = "DynamoDB_20120810."
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
ATTEMPTS = 2
BACKOFF = 0.1
CALL_WORST_CASE = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + BACKOFF  # 6.1 s
# Errors after which a second attempt may succeed (DynamoDB's own retryable codes).
RETRYABLE = {"ThrottlingException", "ProvisionedThroughputExceededException",
             "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
             "TransactionInProgressException"}  # fmt: skip
# Errors that the deployment must fix: a named 500, never a retry.
MISCONFIGURED = {"ResourceNotFoundException", "AccessDeniedException",
                 "UnrecognizedClientException", "MissingAuthenticationTokenException",
                 "InvalidSignatureException"}  # fmt: skip


class _AnswerSocket:
    """A connection's socket whose answers are read within READ_TIMEOUT in all, from
    :attr:`end` (set as each request goes out); the rest is the socket's own. As with a
    socket's own ``makefile``, closing it while an answer is being read (http.client
    does, for a ``Connection: close`` answer) closes it once that answer is read."""

    def __init__(self, sock: socket.socket, monotonic: Callable[[], float]) -> None:
        self._sock = sock
        self._monotonic = monotonic
        self._readers = 0
        self._closing = False
        self.end = 0.0

    def makefile(self, mode: str) -> io.BufferedReader:  # what http.client reads from
        self._readers += 1
        return io.BufferedReader(_AnswerReader(self))

    def recv_into(self, buffer: Any) -> int:
        left = self.end - self._monotonic()
        if left <= 0:
            raise TimeoutError(f"DynamoDB's answer took over {READ_TIMEOUT} s")
        self._sock.settimeout(min(left, READ_TIMEOUT))
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        self._closing = True
        if not self._readers:
            self._sock.close()

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing:
            self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _AnswerReader(io.RawIOBase):
    def __init__(self, sock: _AnswerSocket) -> None:
        self._answer = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._answer.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._answer.reader_closed()
        super().close()


class DynamoDBError(ServiceError):
    """DynamoDB refused the request: ``code`` is its error type, ``body`` its answer."""

    def __init__(self, code: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"DynamoDB {code}: {message}")
        self.code = code
        self.body = body


BUSY = "the quota table is busy with this caller's other requests"  # QuotaBusy's message


class Budget:
    """An operation's time budget: ``reserve`` before each call refuses one that might
    end past it (a 503: the caller retries). Once :attr:`busy` (the operation's
    transactions were cancelled by the caller's own concurrent ones, or throttled on its
    own items), the refusal is QuotaBusy: time spent that way never fails open."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self.busy = False

    def reserve(self, seconds: float = CALL_WORST_CASE) -> None:
        if self._clock() + seconds <= self._end:
            return
        if self.busy:
            raise QuotaBusy(f"{BUSY}; try again shortly")
        raise QuotaUnavailable(
            "the quota table is answering too slowly to finish in time; try again shortly"
        )


def _hot_key(answer: dict[str, Any]) -> bool:
    """Whether a throttled request's answer says one key was asked too much: DynamoDB's
    ``ThrottlingReasons``, ``TableReadKeyRangeThroughputExceeded`` and the like (the
    table's or the account's limits are other reasons)."""
    reasons = answer.get("ThrottlingReasons")
    return isinstance(reasons, list) and any(
        isinstance(r, dict) and str(r.get("reason", "")).endswith("KeyRangeThroughputExceeded")
        for r in reasons
    )


def endpoint_for(region: str, endpoint_url: str | None) -> str:
    """DynamoDB's URL: AWS_ENDPOINT_URL_DYNAMODB (a local DynamoDB) or the region's."""
    if endpoint_url:
        return endpoint_url
    suffix = dns_suffix(region)
    if suffix is None:
        raise ConfigError(
            f"no DynamoDB endpoint is known for region {region!r}; allowed: a region of the "
            "aws, aws-cn or aws-us-gov partitions, or AWS_ENDPOINT_URL_DYNAMODB"
        )
    return f"https://dynamodb.{region}.{suffix}"


class DynamoDB:
    """One operation per :meth:`call`: the answer's JSON, or :class:`DynamoDBError`
    (a condition failed, a transaction was cancelled), :class:`QuotaUnavailable` (no
    answer, or throttled twice) or :class:`ConfigError` (the table or the role)."""

    def __init__(self, url: str, region: str, credentials: CredentialSource,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        default = 443 if self._https else 80
        self._host = parts.netloc if parts.port not in (None, default) else (parts.hostname or "")
        self._region = region
        self._credentials = credentials
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        # One keep-alive connection per thread: Lambda runs one request at a time, but
        # `chalice local` serves each on a thread of its own.
        self._local = threading.local()

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in range(1, ATTEMPTS + 1):
            budget.reserve(CALL_WORST_CASE - (attempt - 1) * (CONNECT_TIMEOUT + READ_TIMEOUT))
            try:
                status, answer = self._send(operation, body)
            except (OSError, http.client.HTTPException):
                self._close()  # a stale keep-alive connection, or no answer in time
                code, answer = "ConnectionError", {}
            else:
                if status == 200:
                    return answer
                code = str(answer.get("__type", f"HTTP {status}")).rsplit("#", 1)[-1]
                if code in MISCONFIGURED:
                    raise ConfigError(
                        f"DynamoDB refused the quota table's request ({code}); check "
                        "UPLOAD_QUOTA_TABLE, the table's region and the role's dynamodb: "
                        "permissions (make policies)"
                    )
                if code not in RETRYABLE and status < 500:
                    message = str(answer.get("message") or answer.get("Message") or "")
                    raise DynamoDBError(code, message[:200], answer)
            if attempt < ATTEMPTS:
                self._sleep(BACKOFF)
        if _hot_key(answer):
            # The caller's own items, written too fast (its own burst): never failed open.
            raise QuotaBusy(f"{BUSY} ({code}: a hot key); try again shortly")
        raise QuotaUnavailable(
            f"the quota table is unavailable ({code}); no URL is issued uncounted; "
            "try again shortly"
        )

    def _send(self, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": TARGET + operation}  # fmt: skip
        headers.update(authorization_headers(
            self._credentials.get(), "POST", self._host, body, headers, self._region,
            "dynamodb", self._clock()))  # fmt: skip
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.sock is None:
            # None also after an answer with "Connection: close": http.client would
            # reconnect by itself, with a plain socket (no whole-answer bound).
            connection = self._connect()
        connection.request("POST", "/", body, headers)
        if isinstance(connection.sock, _AnswerSocket):
            connection.sock.end = self._monotonic() + READ_TIMEOUT
        response = connection.getresponse()
        raw = response.read()
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        return response.status, answer if isinstance(answer, dict) else {}

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._netloc, timeout=CONNECT_TIMEOUT)
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(READ_TIMEOUT)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.sock = _AnswerSocket(connection.sock, self._monotonic)
        self._local.connection = connection
        return connection

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None
