"""Issuing presigned upload URLs and POST policies. No HTTP framework, no os.environ.

The S3 client is injected. Presigning is local computation (an HMAC over the request),
so issuing a URL makes no request to S3 at all: no placeholder object is written, and an
abandoned upload leaves nothing behind.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.keys import new_upload_id, upload_key
from chalicelib.rules import (
    FILENAME_HEADER,
    FILENAME_METADATA,
    UploadRequest,
    content_disposition,
    filename_metadata,
    put_headers,
)
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_ISO = "%Y-%m-%dT%H:%M:%SZ"
# boto3 parameter name for each header a PUT may be required to carry.
_PUT_PARAMS = {
    "Content-Type": "ContentType",
    "Content-Length": "ContentLength",
    "Content-MD5": "ContentMD5",
    "Content-Disposition": "ContentDisposition",
    "If-None-Match": "IfNoneMatch",
}


@dataclass(frozen=True)
class PutTicket:
    """Everything a client needs to PUT one file: the URL and the headers it must send."""

    upload_id: str
    key: str
    url: str
    expires_in: int
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    filename: str | None = None

    def to_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /put-url``. ``PUT_URL`` and ``UUID`` are the original
        service's contract and keep their names."""
        return {
            "PUT_URL": self.url,
            "UUID": self.upload_id,
            "key": self.key,
            "method": "PUT",
            "headers": dict(self.headers),
            "expires_in": self.expires_in,
            "expires_at": self.expires_at.strftime(_ISO),
            "filename": self.filename,
        }


@dataclass(frozen=True)
class PostTicket:
    """A browser-form upload: POST ``fields`` plus the file (last) to ``url``."""

    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_in: int
    expires_at: datetime
    filename: str | None = None

    def to_companion_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /s3/params``, the shape Uppy's AwsS3 plugin reads."""
        return {
            "method": "POST",
            "url": self.url,
            "fields": dict(self.fields),
            "expires": self.expires_in,
            "headers": {},
            "UUID": self.upload_id,
            "key": self.key,
        }

    def to_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /post-url``."""
        return {
            "url": self.url,
            "fields": dict(self.fields),
            "UUID": self.upload_id,
            "key": self.key,
            "method": "POST",
            "max_bytes": self.max_bytes,
            "expires_in": self.expires_in,
            "expires_at": self.expires_at.strftime(_ISO),
            "filename": self.filename,
        }


@dataclass(frozen=True)
class PartTicket:
    """One part's upload URL, and the headers to send with its PUT."""

    url: str
    expires_in: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadTicket:
    """A short-lived GET URL for one stored upload."""

    upload_id: str
    key: str
    url: str
    expires_in: int
    expires_at: datetime
    filename: str | None = None

    def to_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /uploads/{uuid}/download-url``."""
        return {
            "url": self.url,
            "expires_in": self.expires_in,
            "expires_at": self.expires_at.strftime(_ISO),
            "UUID": self.upload_id,
            "key": self.key,
            "filename": self.filename,
        }


class Presigner:
    """Issues presigned PUT URLs and POST policies for new uploads in a caller's key space
    (``space``, from :func:`chalicelib.auth.key_space`), and GET URLs for stored ones."""

    def __init__(
        self,
        client: S3Client,
        settings: Settings,
        new_id: Callable[[], str] = new_upload_id,
    ) -> None:
        self._client = client
        self._settings = settings
        self._new_id = new_id

    def put_ticket(self, space: str, request: UploadRequest | None = None) -> PutTicket:
        """A URL that stores one file at ``<space><uuid>[.<ext>]``.

        Every rule in ``request`` and the settings becomes a signed header, listed in the
        ticket's ``headers``; S3 refuses a PUT whose headers differ. With no rules, only
        ``host`` is signed and ``curl -X PUT --upload-file FILE "$URL"`` works as is.
        """
        request = request or UploadRequest()
        upload_id, key = self.new_upload(space, request)
        headers = put_headers(request, self._settings)
        params: dict[str, Any] = {"Bucket": self._settings.bucket, "Key": key}
        for name, value in headers.items():
            if name == FILENAME_HEADER:
                params["Metadata"] = {FILENAME_METADATA: value}
            else:
                params[_PUT_PARAMS[name]] = int(value) if name == "Content-Length" else value
        expires_in = self._settings.url_expires
        url = self._client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
        )
        return PutTicket(
            upload_id=upload_id,
            key=key,
            url=url,
            expires_in=expires_in,
            expires_at=_signed_at(url) + timedelta(seconds=expires_in),
            headers=headers,
            filename=request.filename,
        )

    def post_ticket(self, space: str, request: UploadRequest | None = None) -> PostTicket:
        """A POST policy for one file of at most ``UPLOAD_MAX_BYTES`` (or 5 GiB).

        The policy pins the exact key, the byte range (``content-length-range``) and the
        content type: the requested one exactly, or, with none requested, any.
        """
        request = request or UploadRequest()
        upload_id, key = self.new_upload(space, request)
        max_bytes = self._settings.size_limit
        fields: dict[str, str] = {}
        conditions: list[Any] = [["content-length-range", 0, max_bytes]]
        if request.content_type is not None:
            fields["Content-Type"] = request.content_type
            conditions.append({"Content-Type": request.content_type})
        else:
            conditions.append(["starts-with", "$Content-Type", ""])
        disposition = request.content_disposition()
        if disposition is not None:
            fields["Content-Disposition"] = disposition
            conditions.append({"Content-Disposition": disposition})
        if request.filename is not None:
            fields[FILENAME_HEADER] = filename_metadata(request.filename)
            conditions.append({FILENAME_HEADER: fields[FILENAME_HEADER]})
        expires_in = self._settings.url_expires
        # boto3 adds the exact {"bucket": ...} and {"key": ...} conditions itself.
        post = self._client.generate_presigned_post(
            Bucket=self._settings.bucket,
            Key=key,
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=expires_in,
        )
        return PostTicket(
            upload_id=upload_id,
            key=key,
            url=post["url"],
            fields=post["fields"],
            max_bytes=max_bytes,
            expires_in=expires_in,
            expires_at=_policy_expiration(post["fields"]["policy"]),
            filename=request.filename,
        )

    def download_ticket(self, upload_id: str, key: str, filename: str | None) -> DownloadTicket:
        """A URL that downloads ``key``, always as an attachment (never rendered by the
        browser on S3's origin), named ``filename`` when the upload gave one."""
        params: dict[str, Any] = {"Bucket": self._settings.bucket, "Key": key}
        params["ResponseContentDisposition"] = (
            content_disposition("attachment", filename) if filename else "attachment"
        )
        expires_in = self._settings.url_expires
        url = self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in, HttpMethod="GET"
        )
        return DownloadTicket(
            upload_id=upload_id,
            key=key,
            url=url,
            expires_in=expires_in,
            expires_at=_signed_at(url) + timedelta(seconds=expires_in),
            filename=filename,
        )

    def part_ticket(
        self, key: str, multipart_id: str, part_number: int, md5: str | None
    ) -> PartTicket:
        """A URL that uploads one part of a multipart upload; with ``md5``, S3 also checks
        the part's bytes against it (a signed ``Content-MD5``)."""
        params: dict[str, Any] = {
            "Bucket": self._settings.bucket,
            "Key": key,
            "UploadId": multipart_id,
            "PartNumber": part_number,
        }
        headers = {"Content-MD5": md5} if md5 else {}
        if md5:
            params["ContentMD5"] = md5
        expires_in = self._settings.url_expires
        url = self._client.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
        )
        return PartTicket(url=url, expires_in=expires_in, headers=headers)

    def new_upload(self, space: str, request: UploadRequest) -> tuple[str, str]:
        """A fresh upload id and its key: the server names every object, never the client."""
        upload_id = self._new_id()
        return upload_id, upload_key(space, upload_id, request.extension)


def _signed_at(url: str) -> datetime:
    # S3 counts X-Amz-Expires from X-Amz-Date, which botocore stamps from its own clock while
    # signing; reading it back makes expires_at exactly the moment S3 starts refusing the URL.
    (amz_date,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)


def _policy_expiration(policy: str) -> datetime:
    # The policy's own "expiration" is what S3 enforces for a form POST.
    expiration = json.loads(base64.b64decode(policy))["expiration"]
    return datetime.strptime(expiration, _ISO).replace(tzinfo=UTC)
