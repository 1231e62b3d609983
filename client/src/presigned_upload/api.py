"""The service's HTTP API, as the client uses it. The requests session is injected.

Every call is retried, with exponential backoff and jitter, when the network fails or
the API answers 429 or 5xx; not a 429 ``QuotaExceeded``, whose message says when the
quota resets. A create retried after a lost answer may leave one unused multipart
upload, which the bucket's lifecycle rule discards; a completion is safe to retry (the
service says so).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests

RETRY_STATUSES = (429, 500, 502, 503, 504)


class ApiError(Exception):
    """The API refused a request (``status``: its HTTP status; the message is the
    server's own, saying what is allowed), or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


class Api:
    """Calls to the upload API at ``base_url``, with ``token`` as the Authorization header."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        token: str | None = None,
        timeout: float = 30,
        auth: requests.auth.AuthBase | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._headers = {"Authorization": token} if token else {}
        self._timeout = timeout
        self._auth = auth  # e.g. presigned_upload.iam.SigV4Auth, for stages with AUTH_MODE=iam
        self._retries, self._backoff, self._sleep = retries, backoff, sleep

    @property
    def session(self) -> requests.Session:
        return self._session

    @property
    def base_url(self) -> str:
        return self._base

    def put_url(self, params: Mapping[str, str]) -> dict[str, Any]:
        return dict(self._call("GET", "/put-url", params=params))

    def create_multipart(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/s3/multipart", json=body))

    def part_url(
        self, key: str, upload_id: str, number: int, checksums: Mapping[str, str], size: int
    ) -> dict[str, Any]:
        """One part's URL; ``checksums`` (``{"sha256": ...}`` or ``{"md5": ...}``, base64)
        and its ``size`` (as Content-Length) are signed into it."""
        params = {"key": key, **checksums, "size": str(size)}
        return dict(self._call("GET", f"{self._multipart(upload_id)}/{number}", params=params))

    def batch_urls(self, key: str, upload_id: str, numbers: list[int]) -> dict[int, str]:
        """Presigned URLs for up to 100 parts in one call."""
        params = {"key": key, "partNumbers": ",".join(map(str, numbers))}
        body = self._call("GET", f"{self._multipart(upload_id)}/batch", params=params)
        return {int(n): str(url) for n, url in body["presignedUrls"].items()}

    def list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = self._call(
            "GET", self._multipart(upload_id), params={"key": key}
        )
        return parts

    def complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        path = f"{self._multipart(upload_id)}/complete"
        return dict(self._call("POST", path, params={"key": key}, json={"parts": parts}))

    def abort(self, key: str, upload_id: str) -> None:
        self._call("DELETE", self._multipart(upload_id), params={"key": key})

    def status(self, upload_uuid: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/uploads/{upload_uuid}"))

    @staticmethod
    def _multipart(upload_id: str) -> str:
        return f"/s3/multipart/{quote(upload_id, safe='')}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON the API answers (an object, or a list for list_parts); ApiError if it
        refused, or could not be reached after the retries."""
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._session.request(
                    method, self._base + path, headers=self._headers, timeout=self._timeout,
                    auth=self._auth, **kwargs,
                )  # fmt: skip
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    reason = f"({_cause(exc)}) after {attempt + 1} attempts"
                    raise ApiError(0, f"could not reach the API at {self._base} {reason}") from exc
            except requests.RequestException as exc:  # never sent: a bad URL or header
                raise ApiError(0, f"could not send the request to {self._base} "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from exc  # fmt: skip
            else:
                if response.status_code not in RETRY_STATUSES or last or _quota(response):
                    return _answer(response)
            self._sleep(min(self._backoff * 2**attempt, 20) * random.uniform(0.5, 1))  # noqa: S311
        raise AssertionError("unreachable")


def _quota(response: requests.Response) -> bool:
    """A 429 QuotaExceeded: a quota, not a moment's throttling; no retry can succeed
    before it resets (its message says when)."""
    if response.status_code != 429:
        return False
    try:
        return bool(response.json().get("Code") == "QuotaExceeded")
    except (ValueError, AttributeError):
        return False


def _answer(response: requests.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json().get("Message") or response.text
        except (ValueError, AttributeError):
            message = response.text[:500]
        raise ApiError(response.status_code, message)
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(0, f"the API answered {response.status_code} with no JSON; is --api "
                          "the API's URL?") from exc  # fmt: skip


def _cause(exc: BaseException) -> str:
    """The innermost reason a request failed: ConnectionRefusedError, RemoteDisconnected..."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return type(exc).__name__
