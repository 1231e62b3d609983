"""The service's HTTP API, as the client uses it. The requests session is injected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests


class ApiError(Exception):
    """The API refused a request; the message is the server's own (what is allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
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
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._headers = {"Authorization": token} if token else {}
        self._timeout = timeout
        self._auth = auth  # e.g. presigned_upload.iam.SigV4Auth, for stages with AUTH_MODE=iam

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
        refused."""
        response = self._session.request(
            method, self._base + path, headers=self._headers, timeout=self._timeout,
            auth=self._auth, **kwargs,
        )  # fmt: skip
        if response.status_code >= 400:
            try:
                message = response.json().get("Message") or response.text
            except ValueError:
                message = response.text[:500]
            raise ApiError(response.status_code, message)
        return response.json()
