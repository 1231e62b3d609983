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

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.core import metrics
from chalicelib.core.checksums import (
    StoredChecksum,
    check_checksum_given,
    checksum_headers,
    stored_checksum,
)
from chalicelib.core.errors import ServiceError, UploadConflict, UploadNotFound, UploadRejected
from chalicelib.core.keys import upload_id_in
from chalicelib.core.presign import PartTicket, Presigner, Reserve
from chalicelib.core.rules import UploadRequest, object_headers
from chalicelib.core.s3 import (
    CALL_WORST_CASE,
    COMPLETE_WORST_CASE,
    Deadline,
    object_params,
    storage_errors,
)
from chalicelib.core.settings import MULTIPART_RESERVATION_SECONDS, Settings
from chalicelib.core.tags import UNCLAIMED_HEADER

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
    checksum: str | None  # the algorithm every part must carry (S3's name, "SHA256")
    checksum_required: bool  # UPLOAD_REQUIRE_CHECKSUM: each part needs md5 or sha256


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
    checksum_sha256: str | None = None


@dataclass(frozen=True)
class Completed:
    """The object a completion assembled."""

    upload_id: str | None
    key: str
    bucket: str
    etag: str | None
    location: str | None
    checksum: StoredChecksum | None = None


class Multipart:
    """Creates, signs, lists, completes and aborts multipart uploads in a caller's space."""

    def __init__(
        self,
        client: Callable[[], S3Client],
        settings: Settings,
        presigner: Presigner,
        completer: Callable[[], S3Client] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``client`` gives the S3 client, built on first use; ``completer`` the one for
        CompleteMultipartUpload, which S3 may take many seconds to answer for a large
        object, with a longer read timeout than the other calls get. ``clock`` times
        each route's Deadline."""
        self._client = client
        self._settings = settings
        self._presigner = presigner
        self._completer = completer or client
        self._clock = clock

    def create(self, space: str, request: UploadRequest, checksum: str | None = None,
               reserve: Reserve | None = None) -> Created:  # fmt: skip
        """Start an upload at ``<space><uuid>[.<ext>]``; S3 stores the type and filename
        given now with the object that the completion assembles. With ``checksum``
        (``"SHA256"``), S3 demands and verifies that checksum on every part, and stores
        the object's composite checksum. ``reserve`` counts the upload against the
        caller's quotas first, at the most a completion accepts (UPLOAD_MAX_BYTES)."""
        upload_id, key = self._presigner.new_upload(space, request)
        # One deadline for the route: the quota's work (at most its own 10 s) counts too.
        deadline = Deadline(clock=self._clock)
        if reserve is not None:
            reserve(upload_id, self._settings.object_size_limit, MULTIPART_RESERVATION_SECONDS)
        params = object_params(object_headers(request))
        if checksum is not None:
            params["ChecksumAlgorithm"] = checksum
        if self._settings.unclaimed_days is not None:
            params["Tagging"] = UNCLAIMED_HEADER
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors():
            created = s3.create_multipart_upload(Bucket=self._settings.bucket, Key=key, **params)
        if request.size is not None:
            metrics.add("bytes_declared", request.size)
        return Created(upload_id, key, created["UploadId"], self._settings.bucket,
                       request.filename, checksum, self._settings.require_checksum)  # fmt: skip

    def part_ticket(
        self,
        upload: UploadRef,
        number: int,
        md5: str | None,
        sha256: str | None,
        size: int | None = None,
    ) -> PartTicket:
        """A presigned UploadPart URL; with ``md5`` or ``sha256`` (the part's digest,
        base64), each is a signed header and S3 checks the part's bytes against it. An
        upload created with ``checksum: sha256`` needs ``sha256``: S3 refuses a part
        without it. With ``size``, ``Content-Length`` is signed: S3 refuses a part of
        any other length, so the URL cannot store more than that."""
        check_checksum_given(md5, sha256, self._settings, part=True)
        headers = checksum_headers(md5, sha256)
        if size is not None:
            headers["Content-Length"] = str(size)
        return self._presigner.part_ticket(upload.key, upload.multipart_id, number, headers)

    def batch_urls(self, upload: UploadRef, numbers: list[int]) -> dict[int, str]:
        """Presigned UploadPart URLs for several parts, by part number, with no checksum
        (each URL would have to sign its own): refused under UPLOAD_REQUIRE_CHECKSUM. Made
        without a call to S3, so S3 itself refuses such a part of an upload created with
        ``checksum: sha256`` (400 InvalidRequest: the checksum is missing)."""
        if self._settings.require_checksum:
            raise UploadRejected(
                "batch signing is off because UPLOAD_REQUIRE_CHECKSUM is on; allowed: "
                "GET /s3/multipart/{uploadId}/{partNumber}?key=...&sha256=... for each part"
            )
        return {
            n: self._presigner.part_ticket(upload.key, upload.multipart_id, n, {}).url
            for n in numbers
        }

    def list_parts(self, upload: UploadRef) -> list[ListedPart]:
        """Every part S3 holds for the upload, all pages."""
        deadline = Deadline(clock=self._clock)
        return self._listing(upload.key, upload.multipart_id, deadline)[1]

    def complete(self, space: str, upload: UploadRef, parts: list[CompletedPart]) -> Completed:
        """Assemble the listed parts into the object. Safe to retry.

        The parts S3 holds are listed first: a missing one is named, and one whose ETag
        is not the client's is refused. S3 is then sent *its own* listing (ETags, and the
        summed size as ``x-amz-mp-object-size``), so a part replaced after the listing
        makes S3 refuse the completion: the size checked against UPLOAD_MAX_BYTES is the
        size stored. Over the limit, the upload is aborted (its parts are deleted) and
        refused. With UPLOAD_NO_OVERWRITE, ``If-None-Match: *`` makes S3 refuse to replace
        an existing object. A completion retried after S3 completed it (its answer lost)
        finds the object, and answers as the first did.
        """
        key, multipart_id = upload.key, upload.multipart_id
        deadline = Deadline(clock=self._clock)
        try:
            algorithm, listed_parts = self._listing(key, multipart_id, deadline)
        except UploadNotFound:
            before = self._completed_before(space, key, parts, deadline)
            if before is None:
                raise
            return before
        held = {p.number: p for p in listed_parts}
        for part in parts:
            listed = held.get(part.number)
            if listed is None:
                numbers = ", ".join(map(str, sorted(held)[:20])) or "none"
                raise UploadRejected(
                    f"part {part.number} was not uploaded; allowed: the parts S3 holds "
                    f"({numbers}), with their ETags (GET /s3/multipart/{{uploadId}})"
                )
            if _unquoted(listed.etag) != _unquoted(part.etag):
                raise UploadRejected(
                    f"part {part.number}'s ETag {part.etag[:80]!r} is not the one S3 holds; "
                    "allowed: the ETag of each part as S3 lists it (GET /s3/multipart/"
                    "{uploadId}); a part uploaded again must be listed with its new ETag"
                )
        total = sum(held[p.number].size for p in parts)
        self._check_total(key, multipart_id, total, deadline)
        completion: dict[str, Any] = {
            "Bucket": self._settings.bucket,
            "Key": key,
            "UploadId": multipart_id,
            "MultipartUpload": {
                "Parts": [_completion_part(held[p.number], algorithm) for p in parts]
            },
            # S3 refuses the completion (400) unless the parts add up to exactly this.
            "MpuObjectSize": total,
        }
        if self._settings.no_overwrite:
            completion["IfNoneMatch"] = "*"
        completer = deadline.reserve(COMPLETE_WORST_CASE, self._completer)
        try:
            with storage_errors(self._refusals(key, multipart_id)):
                done = completer.complete_multipart_upload(**completion)
        except UploadNotFound:
            # Completed by a concurrent call of the same client (a retry racing the first).
            again = self._completed_before(space, key, parts, deadline)
            if again is None:
                raise
            return again
        metrics.add("multipart_completions")
        return Completed(upload_id_in(space, key), key, self._settings.bucket,
                         done.get("ETag"), done.get("Location"), stored_checksum(done))  # fmt: skip

    def completion_headers(self, upload: UploadRef) -> dict[str, str]:
        """The headers to sign into a CompleteMultipartUpload that the client sends to S3
        itself (Uppy's signRequest): the size of every part S3 holds, measured now, as
        ``x-amz-mp-object-size`` (S3 refuses the completion if the parts then add up to
        anything else), and ``If-None-Match: *`` with UPLOAD_NO_OVERWRITE. Over the size
        limit, the upload is aborted and refused."""
        deadline = Deadline(clock=self._clock)
        _, listed = self._listing(upload.key, upload.multipart_id, deadline)
        total = sum(p.size for p in listed)
        self._check_total(upload.key, upload.multipart_id, total, deadline)
        headers = {"x-amz-mp-object-size": str(total)}
        if self._settings.no_overwrite:
            headers["If-None-Match"] = "*"
        return headers

    def _check_total(self, key: str, multipart_id: str, total: int, deadline: Deadline) -> None:
        """Abort and refuse an upload whose parts add up to more than UPLOAD_MAX_BYTES."""
        if self._settings.max_bytes is not None and total > self._settings.max_bytes:
            self._abort(key, multipart_id, deadline)
            raise UploadRejected(
                f"the upload is {total} bytes, over the limit; allowed: at most "
                f"{self._settings.max_bytes} bytes (UPLOAD_MAX_BYTES). It was aborted."
            )

    def _completed_before(
        self, space: str, key: str, parts: list[CompletedPart], deadline: Deadline
    ) -> Completed | None:
        """The object an earlier completion of these very parts stored at ``key``, if it
        is there: its ETag is S3's multipart ETag of the parts' ETags (the MD5 of their
        MD5s, then ``-<count>``). None if there is no such object."""
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        absent = UploadNotFound(f"no object at {key!r}")
        try:
            with storage_errors({"404": absent, "NoSuchKey": absent}):
                head = s3.head_object(Bucket=self._settings.bucket, Key=key, ChecksumMode="ENABLED")
        except UploadNotFound:
            return None
        if head["ETag"] != multipart_etag([p.etag for p in parts]):
            return None
        return Completed(upload_id_in(space, key), key, self._settings.bucket, head["ETag"],
                         None, stored_checksum(head))  # fmt: skip

    def abort(self, upload: UploadRef) -> float:
        """Abort the upload and delete its parts; the seconds left of the route's budget
        (for giving back its quota)."""
        deadline = Deadline(clock=self._clock)
        self._abort(upload.key, upload.multipart_id, deadline)
        return deadline.remaining()

    def _abort(self, key: str, upload: str, deadline: Deadline) -> None:
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors(self._refusals(key, upload)):
            s3.abort_multipart_upload(Bucket=self._settings.bucket, Key=key, UploadId=upload)

    def _listing(
        self, key: str, upload: str, deadline: Deadline
    ) -> tuple[str | None, list[ListedPart]]:
        """The upload's checksum algorithm (None if it has none) and every part S3
        holds: ListParts, page after page (at most 1,000 parts a page), each page within
        the route's deadline."""
        page = self._page(key, upload, 0, deadline)
        parts = page.parts
        while page.next_marker is not None:
            page = self._page(key, upload, page.next_marker, deadline)
            parts += page.parts
        return page.algorithm, parts

    def _page(self, key: str, upload: str, marker: int, deadline: Deadline) -> _Page:
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors(self._refusals(key, upload)):
            page = s3.list_parts(
                Bucket=self._settings.bucket,
                Key=key,
                UploadId=upload,
                PartNumberMarker=marker,
            )
        parts = [
            ListedPart(p["PartNumber"], p["ETag"], p["Size"], p.get("ChecksumSHA256"))
            for p in page.get("Parts", [])
        ]
        more = page.get("IsTruncated")
        return _Page(page.get("ChecksumAlgorithm"), parts,
                     page["NextPartNumberMarker"] if more else None)  # fmt: skip

    @staticmethod
    def _refusals(key: str, upload: str) -> dict[str, ServiceError]:
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
            # x-amz-mp-object-size: a part changed after it was listed.
            "InvalidRequest": UploadRejected(
                "the parts changed while the upload was being completed; allowed: list "
                "the parts again (GET /s3/multipart/{uploadId}) and complete with them"
            ),
            "PreconditionFailed": UploadConflict(
                f"an object already exists at {key!r} and UPLOAD_NO_OVERWRITE is on"
            ),
            # Another completion (or abort) of this key or upload ran at the same time:
            # conditional writes of one key race; S3 answers 409 to all but one.
            **{
                code: UploadConflict(
                    f"another request completed or aborted an upload of {key!r} at the same "
                    f"time (S3: {code}); allowed: try again: GET /uploads/{{uuid}} says whether "
                    "it is stored, GET /s3/multipart/{uploadId} whether this upload still is"
                )
                for code in ("ConditionalRequestConflict", "OperationAborted")
            },
        }


@dataclass(frozen=True)
class _Page:
    """One page of ListParts."""

    algorithm: str | None
    parts: list[ListedPart]
    next_marker: int | None


def _completion_part(part: ListedPart, algorithm: str | None) -> dict[str, Any]:
    """A part as CompleteMultipartUpload takes it, from S3's own listing: its ETag, and
    its checksum when the upload has an algorithm (S3 then demands each part's)."""
    entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
    if algorithm is None:
        return entry
    if algorithm != "SHA256" or part.checksum_sha256 is None:
        raise UploadRejected(
            f"part {part.number} has no {algorithm} checksum stored; allowed: upload it "
            "again with the sha256 its URL was signed for"
        )
    entry["ChecksumSHA256"] = part.checksum_sha256
    return entry


def _unquoted(etag: str) -> str:
    return etag.strip('"')


def multipart_etag(etags: list[str]) -> str:
    """S3's ETag for an object assembled from parts with these (MD5) ETags: the MD5 of
    their binary digests, then ``-<count>``, quoted. Not an MD5 ETag (SSE-KMS): ""."""
    try:
        digests = b"".join(bytes.fromhex(_unquoted(etag)) for etag in etags)
    except ValueError:
        return ""
    if len(digests) != 16 * len(etags):
        return ""
    return f'"{hashlib.md5(digests).hexdigest()}-{len(etags)}"'  # noqa: S324 (S3's ETag)
