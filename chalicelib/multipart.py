"""Multipart uploads: create, sign parts, list, complete and abort, in a caller's space.

The server names the key (the caller's space, a UUID, the extension) when the upload is
created, and afterwards signs parts, lists, completes or aborts only for a key of that
shape inside the caller's own space. S3 ties every upload id to one key, so an upload id
from elsewhere gets S3's NoSuchUpload, which becomes a 404.

Uppy does not say a file's size up front, so UPLOAD_MAX_BYTES is enforced twice: part
numbers stop where an upload of that size must have ended (every part but the last is
at least 5 MiB), and on completion the listed parts are added up; over the limit, the
upload is aborted and refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.errors import UploadConflict, UploadNotFound, UploadRejected
from chalicelib.keys import upload_id_in
from chalicelib.presign import PartTicket, Presigner
from chalicelib.rules import UploadRequest, object_headers
from chalicelib.s3 import object_params, storage_errors
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024**2
GiB = 1024**3
# S3's multipart limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
# The most part URLs one batch call signs.
MAX_BATCH = 100


def max_part_count(limit: int) -> int:
    """The most parts an upload of at most ``limit`` bytes can need: every part but the
    last is at least 5 MiB, so beyond ``ceil(limit / 5 MiB)`` parts it is too big."""
    return min(MAX_PARTS, max(1, -(-limit // MIN_PART_SIZE)))


@dataclass(frozen=True)
class UploadRef:
    """One multipart upload: its object key (in the caller's space) and S3's upload id."""

    key: str
    multipart_id: str


@dataclass(frozen=True)
class Created:
    """A multipart upload just started."""

    upload_id: str  # the service's UUID
    key: str
    multipart_id: str  # S3's UploadId
    bucket: str
    filename: str | None
    part_md5_required: bool


@dataclass(frozen=True)
class CompletedPart:
    """A part as the client lists it for completion."""

    number: int
    etag: str


@dataclass(frozen=True)
class ListedPart:
    """A part as S3 holds it."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class Completed:
    """The object a completion assembled."""

    upload_id: str | None
    key: str
    bucket: str
    etag: str | None
    location: str | None


class Multipart:
    """Creates, signs, lists, completes and aborts multipart uploads in a caller's space."""

    def __init__(
        self,
        client: Callable[[], S3Client],
        settings: Settings,
        presigner: Presigner,
        completer: Callable[[], S3Client] | None = None,
    ) -> None:
        """``client`` gives the S3 client, built on first use; ``completer`` the one for
        CompleteMultipartUpload, which S3 may take many seconds to answer for a large
        object, with a longer read timeout than the other calls get."""
        self._client = client
        self._settings = settings
        self._presigner = presigner
        self._completer = completer or client

    def create(self, space: str, request: UploadRequest) -> Created:
        """Start an upload at ``<space><uuid>[.<ext>]``; S3 stores the type and filename
        given now with the object that the completion assembles."""
        upload_id, key = self._presigner.new_upload(space, request)
        params = object_params(object_headers(request))
        with storage_errors():
            created = self._client().create_multipart_upload(
                Bucket=self._settings.bucket, Key=key, **params
            )
        return Created(upload_id, key, created["UploadId"], self._settings.bucket,
                       request.filename, self._settings.require_md5)  # fmt: skip

    def part_ticket(self, upload: UploadRef, number: int, md5: str | None) -> PartTicket:
        """A presigned UploadPart URL; with ``md5`` (the part's, base64), S3 checks the
        part's bytes against it."""
        if md5 is None and self._settings.require_md5:
            raise UploadRejected(
                "md5 is required: the base64 of this part's 16-byte MD5 digest "
                "(UPLOAD_REQUIRE_MD5 is on)"
            )
        return self._presigner.part_ticket(upload.key, upload.multipart_id, number, md5)

    def batch_urls(self, upload: UploadRef, numbers: list[int]) -> dict[int, str]:
        """Presigned UploadPart URLs for several parts, by part number."""
        if self._settings.require_md5:
            raise UploadRejected(
                "batch signing is off because UPLOAD_REQUIRE_MD5 is on; allowed: "
                "GET /s3/multipart/{uploadId}/{partNumber}?key=...&md5=... for each part"
            )
        return {
            n: self._presigner.part_ticket(upload.key, upload.multipart_id, n, None).url
            for n in numbers
        }

    def list_parts(self, upload: UploadRef) -> list[ListedPart]:
        """Every part S3 holds for the upload, all pages."""
        return [
            ListedPart(p["PartNumber"], p["ETag"], p["Size"])
            for p in self._parts(upload.key, upload.multipart_id)
        ]

    def complete(self, space: str, upload: UploadRef, parts: list[CompletedPart]) -> Completed:
        """Assemble the listed parts into the object.

        The parts S3 holds are listed first: a missing one is named, and with
        UPLOAD_MAX_BYTES set, they are added up; over the limit, the upload is aborted (its
        parts are deleted) and refused. With UPLOAD_NO_OVERWRITE,
        ``If-None-Match: *`` makes S3 refuse to replace an existing object.
        """
        key, multipart_id = upload.key, upload.multipart_id
        # The parts S3 holds: whether the upload exists at all (NoSuchUpload, a 404), which
        # named parts are missing (said by number), and the total size.
        sizes = {p["PartNumber"]: p["Size"] for p in self._parts(key, multipart_id)}
        missing = [p.number for p in parts if p.number not in sizes]
        if missing:
            held = ", ".join(map(str, sorted(sizes)[:20])) or "none"
            raise UploadRejected(
                f"part {missing[0]} was not uploaded; allowed: the parts S3 holds "
                f"({held}), with their ETags (GET /s3/multipart/{{uploadId}})"
            )
        if self._settings.max_bytes is not None:
            total = sum(sizes[p.number] for p in parts)
            if total > self._settings.max_bytes:
                self._abort(key, multipart_id)
                raise UploadRejected(
                    f"the upload is {total} bytes, over the limit; allowed: at most "
                    f"{self._settings.max_bytes} bytes (UPLOAD_MAX_BYTES). It was aborted."
                )
        completion: dict[str, Any] = {
            "Bucket": self._settings.bucket,
            "Key": key,
            "UploadId": multipart_id,
            "MultipartUpload": {"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
        }
        if self._settings.no_overwrite:
            completion["IfNoneMatch"] = "*"
        with storage_errors(self._refusals(key, multipart_id)):
            done = self._completer().complete_multipart_upload(**completion)
        return Completed(upload_id_in(space, key), key, self._settings.bucket,
                         done.get("ETag"), done.get("Location"))  # fmt: skip

    def abort(self, upload: UploadRef) -> None:
        """Abort the upload and delete its parts."""
        self._abort(upload.key, upload.multipart_id)

    def _abort(self, key: str, upload: str) -> None:
        with storage_errors(self._refusals(key, upload)):
            self._client().abort_multipart_upload(
                Bucket=self._settings.bucket, Key=key, UploadId=upload
            )

    def _parts(self, key: str, upload: str) -> Iterator[dict[str, Any]]:
        """ListParts, page after page (S3 returns at most 1,000 parts a page)."""
        marker = 0
        while True:
            with storage_errors(self._refusals(key, upload)):
                page = self._client().list_parts(
                    Bucket=self._settings.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumberMarker=marker,
                )
            yield from page.get("Parts", [])  # type: ignore[misc]
            if not page.get("IsTruncated"):
                return
            marker = page["NextPartNumberMarker"]

    @staticmethod
    def _refusals(key: str, upload: str) -> dict[str, Any]:
        """S3's answers that are the caller's doing, as the domain's errors."""
        gone = UploadNotFound(
            f"no multipart upload {upload[:80]!r} for key {key!r}: it was completed or "
            "aborted, or never started; allowed: an uploadId from POST /s3/multipart"
        )
        return {
            "NoSuchUpload": gone,
            "InvalidPart": UploadRejected(
                "a listed part was not uploaded, or its ETag does not match; allowed: the "
                "PartNumber and ETag of each uploaded part (GET /s3/multipart/{uploadId})"
            ),
            "InvalidPartOrder": UploadRejected(
                "parts must be listed in ascending PartNumber order"
            ),
            "EntityTooSmall": UploadRejected(
                f"every part but the last must be at least {MIN_PART_SIZE} bytes (5 MiB)"
            ),
            "PreconditionFailed": UploadConflict(
                f"an object already exists at {key!r} and UPLOAD_NO_OVERWRITE is on"
            ),
        }
