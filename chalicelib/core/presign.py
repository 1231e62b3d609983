"""Issuing presigned upload URLs and POST policies. No HTTP framework, no os.environ.

The signing backend is injected (chalicelib/core/signing.py). Presigning is local computation
(an HMAC over the request), so issuing a URL makes no request to S3 at all: no
placeholder object is written, and an abandoned upload leaves nothing behind.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from chalicelib.core import metrics
from chalicelib.core.checksums import StoredChecksum
from chalicelib.core.keys import new_upload_id, upload_key
from chalicelib.core.rules import (
    UploadRequest,
    content_disposition,
    object_headers,
    put_headers,
)
from chalicelib.core.settings import Settings
from chalicelib.core.signing import SigningBackend
from chalicelib.core.sigv4 import ISO8601, NO_HEADERS, formatted
from chalicelib.core.tags import UNCLAIMED_XML

# Counts an upload against its caller's quotas before its URL goes out (chalicelib/
# quotas/): the upload id, the most it can store, and the seconds until its URL (or
# multipart upload) stops working. Raises QuotaExceeded.
Reserve = Callable[[str, int, int], None]


class PutTicket(NamedTuple):
    """Everything a client needs to PUT one file: the URL and the headers it must send."""

    upload_id: str
    key: str
    url: str
    expires_in: int
    expires_at: datetime
    headers: Mapping[str, str] = NO_HEADERS
    filename: str | None = None
    expires_in_capped: bool = False

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
            "expires_at": formatted(self.expires_at, ISO8601),
            "expires_in_capped": self.expires_in_capped,
            "filename": self.filename,
        }


class PostTicket(NamedTuple):
    """A browser-form upload: POST ``fields`` plus the file (last) to ``url``."""

    upload_id: str
    key: str
    url: str
    fields: Mapping[str, str]
    max_bytes: int
    expires_in: int
    expires_at: datetime
    filename: str | None = None
    expires_in_capped: bool = False

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
            "expires_at": formatted(self.expires_at, ISO8601),
            "expires_in_capped": self.expires_in_capped,
            "filename": self.filename,
        }


class PartTicket(NamedTuple):
    """One part's upload URL, and the headers to send with its PUT."""

    url: str
    expires_in: int
    headers: Mapping[str, str] = NO_HEADERS


class DownloadTicket(NamedTuple):
    """A short-lived GET URL for one stored upload."""

    upload_id: str
    key: str
    url: str
    expires_in: int
    expires_at: datetime
    filename: str | None = None
    expires_in_capped: bool = False
    checksum: StoredChecksum | None = None

    def to_response(self) -> dict[str, Any]:
        """The JSON body of ``GET /uploads/{uuid}/download-url``."""
        return {
            "url": self.url,
            "expires_in": self.expires_in,
            "expires_at": formatted(self.expires_at, ISO8601),
            "expires_in_capped": self.expires_in_capped,
            "UUID": self.upload_id,
            "key": self.key,
            "filename": self.filename,
            "checksum": self.checksum.to_response() if self.checksum else None,
        }


class Presigner:
    """Issues presigned PUT URLs and POST policies for new uploads in a caller's key space
    (``space``, from :func:`chalicelib.core.auth.key_space`), and part and GET URLs.

    Every URL lives ``UPLOAD_URL_EXPIRES`` seconds, or less when the signing credentials
    expire first; ``expires_in_capped`` then says so.
    """

    def __init__(
        self,
        backend: SigningBackend,
        settings: Settings,
        new_id: Callable[[], str] = new_upload_id,
    ) -> None:
        self._backend = backend
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
        signed = self._backend.put_object(key, headers, self._settings.url_expires)
        metrics.add("urls_issued")
        if request.size is not None:
            metrics.add("bytes_declared", request.size)
        return PutTicket(
            upload_id=upload_id,
            key=key,
            url=signed.url,
            expires_in=signed.expires_in,
            expires_at=signed.expires_at,
            headers=headers,
            filename=request.filename,
            expires_in_capped=signed.expires_in < self._settings.url_expires,
        )

    def post_ticket(
        self,
        space: str,
        request: UploadRequest | None = None,
        success_status: str | None = None,
        extension: str | None = None,
    ) -> PostTicket:
        """A POST policy for one file of at most ``UPLOAD_MAX_BYTES`` (or 5 GiB).

        The policy pins the exact key, the byte range (``content-length-range``) and the
        content type: the requested one exactly, or, with none requested, any.
        """
        request = request or UploadRequest()
        upload_id, key = self.new_upload(space, request, extension)
        max_bytes = self._settings.size_limit
        fields = object_headers(request)
        if self._settings.unclaimed_days is not None:
            fields["tagging"] = UNCLAIMED_XML  # a POST's tags: XML, pinned by the policy
        if success_status is not None:
            # 201: S3 answers with an XML body naming the key and location (Uppy reads it).
            fields["success_action_status"] = success_status
        conditions: list[Any] = [["content-length-range", 0, max_bytes]]
        if "Content-Type" not in fields:
            conditions.append(["starts-with", "$Content-Type", ""])
        # Each stored attribute is a form field, pinned exactly by the policy.
        conditions += [{name: value} for name, value in fields.items()]
        # The exact {"bucket": ...} and {"key": ...} conditions are added when signing.
        signed = self._backend.post(key, fields, conditions, self._settings.url_expires)
        metrics.add("urls_issued")
        return PostTicket(
            upload_id=upload_id,
            key=key,
            url=signed.url,
            fields=signed.fields,
            max_bytes=max_bytes,
            expires_in=signed.expires_in,
            expires_at=signed.expires_at,
            filename=request.filename,
            expires_in_capped=signed.expires_in < self._settings.url_expires,
        )

    def part_ticket(
        self, key: str, multipart_id: str, part_number: int, headers: Mapping[str, str]
    ) -> PartTicket:
        """A URL that uploads one part of a multipart upload. ``headers`` are the part's
        checksum headers (:func:`chalicelib.core.checksums.checksum_headers`): each is signed,
        and S3 checks the part's bytes against it."""
        signed = self._backend.upload_part(
            key, multipart_id, part_number, headers, self._settings.url_expires
        )
        metrics.add("urls_issued")
        return PartTicket(signed.url, signed.expires_in, dict(headers))

    def download_ticket(
        self,
        upload_id: str,
        key: str,
        filename: str | None,
        checksum: StoredChecksum | None = None,
    ) -> DownloadTicket:
        """A URL that downloads ``key``, always as an attachment (never rendered by the
        browser on S3's origin), named ``filename`` when the upload gave one. ``checksum``
        (S3's stored one) is passed on, for the downloader to check the bytes against."""
        disposition = content_disposition("attachment", filename) if filename else "attachment"
        signed = self._backend.get_object(key, disposition, self._settings.url_expires)
        metrics.add("urls_issued")
        return DownloadTicket(
            upload_id=upload_id,
            key=key,
            url=signed.url,
            expires_in=signed.expires_in,
            expires_at=signed.expires_at,
            filename=filename,
            expires_in_capped=signed.expires_in < self._settings.url_expires,
            checksum=checksum,
        )

    def new_upload(
        self, space: str, request: UploadRequest, extension: str | None = None
    ) -> tuple[str, str]:
        """A fresh upload id and its key: the server names every object, never the client.
        The key's extension is the filename's, or ``extension`` when given."""
        upload_id = self._new_id()
        return upload_id, upload_key(space, upload_id, extension or request.extension)

    def multipart_request(
        self, operation: str, key: str, upload_id: str | None, headers: dict[str, str]
    ) -> str:
        """A presigned multipart request (chalicelib/core/signing.py's MULTIPART_OPERATIONS)
        that the client sends itself, with exactly ``headers``."""
        signed = self._backend.multipart_request(
            operation, key, upload_id, headers, self._settings.url_expires
        )
        metrics.add("urls_issued")
        return signed.url
