"""Signing API requests with AWS SigV4, for stages with AUTH_MODE=iam (`--iam`).

API Gateway's IAM authorizer checks a SigV4 signature for the service ``execute-api``
over the whole request. The caller's credentials come from botocore's usual chain
(environment, profile, SSO, instance role), so this is for servers and scripts.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import requests

_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def region_of(url: str) -> str | None:
    """The region in an API Gateway URL (``<id>.execute-api.<region>.amazonaws.com``)."""
    host = urlsplit(url).hostname or ""
    match = _REGION_IN_HOST.search(host)
    return match.group(1) if match else None


class SigV4Auth(requests.auth.AuthBase):
    """A requests auth hook: signs each request for ``execute-api`` in ``region``."""

    def __init__(self, region: str, credentials: Any = None) -> None:
        import botocore.session

        self._region = region
        found = credentials or botocore.session.get_session().get_credentials()
        if found is None:
            raise ValueError("no AWS credentials found (environment, profile or role)")
        self._credentials: Any = found

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth as Signer
        from botocore.awsrequest import AWSRequest

        body = request.body or b""
        aws = AWSRequest(method=request.method, url=request.url, data=body,
                         headers={k: v for k, v in request.headers.items()
                                  if k.lower() in ("content-type", "host")})  # fmt: skip
        # Frozen per request: refreshable credentials renew themselves here.
        Signer(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(
            aws
        )
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                request.headers[name] = aws.headers[name]
        return request
