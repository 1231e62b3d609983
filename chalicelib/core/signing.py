"""The four S3 requests this service presigns, by two interchangeable backends.

``SigV4Backend`` signs with :mod:`chalicelib.core.sigv4` (no AWS SDK, a few microseconds a
URL); ``BotocoreBackend`` asks a botocore client, and is the fallback for endpoints the
former does not build. Both return the same bytes (tests/unit/test_sigv4.py), and both
cap a URL's lifetime to that of the credentials signing it, when it is known: a URL
cannot work after they expire, so it must not say it will.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from chalicelib.core.credentials import CredentialSource, remaining_seconds
from chalicelib.core.errors import ConfigError, SigningUnavailable
from chalicelib.core.s3 import object_params
from chalicelib.core.settings import Settings
from chalicelib.core.sigv4 import (
    AMZ_DATE,
    ISO8601,
    Credentials,
    Endpoint,
    Signed,
    Signer,
    dns_suffix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# The multipart requests a client may be given presigned: HTTP method, botocore's name.
MULTIPART_OPERATIONS = {
    "CreateMultipartUpload": ("POST", "create_multipart_upload"),
    "ListParts": ("GET", "list_parts"),
    "CompleteMultipartUpload": ("POST", "complete_multipart_upload"),
    "AbortMultipartUpload": ("DELETE", "abort_multipart_upload"),
}


class SigningBackend(Protocol):
    def put_object(self, key: str, headers: Mapping[str, str], expires_in: int) -> Signed: ...

    def upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed: ...

    def get_object(self, key: str, disposition: str, expires_in: int) -> Signed: ...

    def multipart_request(
        self,
        operation: str,
        key: str,
        upload_id: str | None,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed: ...

    def post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> Signed: ...


def capped(expires_in: int, credentials: Credentials, now: datetime) -> int:
    """``expires_in``, or less if the credentials expire sooner."""
    remaining = remaining_seconds(credentials, now)
    if remaining is None or remaining >= expires_in:
        return expires_in
    if remaining < 1:
        raise SigningUnavailable(
            "the service's AWS credentials have expired and could not be renewed; try again shortly"
        )
    return remaining


class SigV4Backend:
    """Presigns with hmac/hashlib; credentials from the environment or botocore's chain."""

    def __init__(
        self,
        signer: Signer,
        credentials: CredentialSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._signer = signer
        self._credentials = credentials
        self._clock = clock

    @classmethod
    def for_settings(cls, settings: Settings, environ: Mapping[str, str]) -> SigV4Backend | None:
        """The backend for this bucket, or None where botocore must build the endpoint."""
        endpoint = Endpoint.for_settings(settings.bucket, settings.region, settings.endpoint_url)
        if endpoint is None:
            return None
        return cls(Signer(endpoint, settings.region), CredentialSource(environ))

    def _current(self, expires_in: int) -> tuple[Credentials, int]:
        credentials = self._credentials.get()
        return credentials, capped(expires_in, credentials, self._clock())

    def put_object(self, key: str, headers: Mapping[str, str], expires_in: int) -> Signed:
        credentials, expires_in = self._current(expires_in)
        return self._signer.presign(credentials, "PUT", key, expires_in, headers=dict(headers))

    def upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed:
        credentials, expires_in = self._current(expires_in)
        # botocore's serializer puts uploadId before partNumber.
        params = [("uploadId", upload_id), ("partNumber", str(part_number))]
        return self._signer.presign(credentials, "PUT", key, expires_in, params, dict(headers))

    def get_object(self, key: str, disposition: str, expires_in: int) -> Signed:
        credentials, expires_in = self._current(expires_in)
        params = [("response-content-disposition", disposition)]
        return self._signer.presign(credentials, "GET", key, expires_in, params)

    def multipart_request(
        self,
        operation: str,
        key: str,
        upload_id: str | None,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed:
        """CreateMultipartUpload (no ``upload_id``), ListParts, CompleteMultipartUpload
        or AbortMultipartUpload, presigned for a client that sends the request itself."""
        credentials, expires_in = self._current(expires_in)
        method = MULTIPART_OPERATIONS[operation][0]
        params = [("uploads", "")] if upload_id is None else [("uploadId", upload_id)]
        return self._signer.presign(credentials, method, key, expires_in, params, dict(headers))

    def post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> Signed:
        credentials, expires_in = self._current(expires_in)
        return self._signer.presign_post(credentials, key, expires_in, fields, conditions)


class BotocoreBackend:
    """Presigns with a botocore client (built lazily by ``client``)."""

    def __init__(self, client: Callable[[], S3Client], bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def _expiry(self, expires_in: int) -> int:
        found = self._client()._request_signer._credentials  # type: ignore[attr-defined]
        if found is None:
            raise SigningUnavailable("no AWS credentials found to sign with")
        expiry = getattr(found, "_expiry_time", None)
        frozen = found.get_frozen_credentials()
        credentials = Credentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)
        return capped(expires_in, credentials, datetime.now(UTC))

    def _url(self, operation: str, params: dict[str, Any], method: str, expires: int) -> Signed:
        expires = self._expiry(expires)
        url = self._client().generate_presigned_url(
            operation, Params={"Bucket": self._bucket, **params}, ExpiresIn=expires,
            HttpMethod=method,
        )  # fmt: skip
        # S3 counts the lifetime from X-Amz-Date, which botocore stamped while signing.
        (amz_date,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
        return Signed(url, datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC), expires)

    def put_object(self, key: str, headers: Mapping[str, str], expires_in: int) -> Signed:
        return self._url("put_object", {"Key": key, **object_params(headers)}, "PUT", expires_in)

    def upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed:
        params = {"Key": key, "UploadId": upload_id, "PartNumber": part_number,
                  **object_params(headers)}  # fmt: skip
        return self._url("upload_part", params, "PUT", expires_in)

    def get_object(self, key: str, disposition: str, expires_in: int) -> Signed:
        params = {"Key": key, "ResponseContentDisposition": disposition}
        return self._url("get_object", params, "GET", expires_in)

    def multipart_request(
        self,
        operation: str,
        key: str,
        upload_id: str | None,
        headers: Mapping[str, str],
        expires_in: int,
    ) -> Signed:
        method, client_operation = MULTIPART_OPERATIONS[operation]
        params = {"Key": key, **object_params(headers)}
        if upload_id is not None:
            params["UploadId"] = upload_id
        return self._url(client_operation, params, method, expires_in)

    def post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> Signed:
        expires_in = self._expiry(expires_in)
        post = self._client().generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions,
            ExpiresIn=expires_in,
        )  # fmt: skip
        # The policy's own "expiration" is what S3 enforces for a form POST.
        expiration = json.loads(base64.b64decode(post["fields"]["policy"]))["expiration"]
        expires_at = datetime.strptime(expiration, ISO8601).replace(tzinfo=UTC)
        signed_at = datetime.strptime(post["fields"]["x-amz-date"], AMZ_DATE).replace(tzinfo=UTC)
        return Signed(post["url"], signed_at, int((expires_at - signed_at).total_seconds()),
                      dict(post["fields"]))  # fmt: skip


# Settings that make botocore address S3 differently from the endpoint this module's
# signer builds: FIPS and dual-stack endpoints, Transfer Acceleration, an endpoint for
# every service. Where any is on, botocore signs, so that the issued URLs go where the
# service's own S3 calls go.
_ENDPOINT_VARIABLES = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
_CONFIG_FILE_SETTINGS = (
    "use_fips_endpoint",
    "use_dualstack_endpoint",
    "use_accelerate_endpoint",
    "endpoint_url",
)


def botocore_reason(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """Why botocore, not the own signer, must sign for these settings; None if it need not.

    A custom endpoint (AWS_ENDPOINT_URL_S3) is addressed path-style by both. Otherwise
    the own signer builds only the ``aws``, ``aws-cn`` and ``aws-us-gov`` partitions'
    regional virtual-hosted endpoints, and only when nothing asks botocore for another
    one: the environment variables above, a global AWS_ENDPOINT_URL, or the same settings
    in the shared config file (which Lambda does not have).
    """
    if settings.signing_backend == "botocore":
        return "SIGNING_BACKEND=botocore"
    if settings.endpoint_url:
        return None
    if dns_suffix(settings.region) is None:
        return f"region {settings.region} is outside the aws, aws-cn and aws-us-gov partitions"
    for name in _ENDPOINT_VARIABLES:
        if environ.get(name, "").strip().lower() == "true":
            return f"{name}=true"
    ignore = environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true"
    if environ.get("AWS_ENDPOINT_URL") and not ignore:
        return "AWS_ENDPOINT_URL is set"
    # os.path, not pathlib: this runs on every cold start, and pathlib's import is not free.
    config = environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    text = ""
    if os.path.isfile(config):
        try:
            with open(config, encoding="utf-8", errors="replace") as file:
                text = file.read()
        except OSError:  # unreadable: nothing set there
            pass
    found = [name for name in _CONFIG_FILE_SETTINGS if name in text]
    return f"{config} sets {found[0]}" if found else None


def backend_for(
    settings: Settings, environ: Mapping[str, str], client: Callable[[], S3Client]
) -> SigningBackend:
    """This module's own signer where it builds the endpoint exactly as botocore would,
    else botocore's (``client`` is then built on first use). SIGNING_BACKEND forces one."""
    reason = botocore_reason(settings, environ)
    own = SigV4Backend.for_settings(settings, environ)
    if settings.signing_backend == "sigv4":
        if own is None:
            raise ConfigError(
                f"SIGNING_BACKEND=sigv4, but the own signer cannot address region "
                f"{settings.region!r}; allowed: auto or botocore for it"
            )
        return own
    if reason is None and own is not None:
        return own
    return BotocoreBackend(client, settings.bucket)
