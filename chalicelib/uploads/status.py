"""Whether an upload happened, read from S3 itself: the service keeps no state of its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.core import tags
from chalicelib.core.checksums import StoredChecksum, stored_checksum
from chalicelib.core.errors import ServiceError, UploadConflict, UploadNotFound
from chalicelib.core.keys import parse_upload_id, upload_key
from chalicelib.core.rules import filename_from_metadata
from chalicelib.core.s3 import CALL_WORST_CASE, Deadline, storage_errors
from chalicelib.core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class StoredUpload:
    """An object that an upload put in S3, as S3 describes it."""

    upload_id: str
    key: str
    size: int
    content_type: str | None
    etag: str
    last_modified: datetime
    filename: str | None
    checksum: StoredChecksum | None = None
    # "verified" once the verifier passed it (UPLOAD_VERIFY), "scanning" until then with
    # UPLOAD_MALWARE_SCAN (the type check and the scan are not both in), else None:
    # just "uploaded".
    verdict: str | None = None
    # The object's tags, when they were read (the verdict's, a claim's).
    tags: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> dict[str, Any]:
        return {
            "UUID": self.upload_id,
            "status": self.verdict or "uploaded",
            "key": self.key,
            "size": self.size,
            "content_type": self.content_type,
            "etag": self.etag,
            "last_modified": self.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "filename": self.filename,
            "checksum": self.checksum.to_response() if self.checksum else None,
        }


class UploadStatus:
    """Finds uploads in a caller's key space (``space``, from
    :func:`chalicelib.core.auth.key_space`); it never looks outside it."""

    def __init__(
        self,
        client: Callable[[], S3Client],
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``client`` gives the S3 client, built on first use; ``clock`` times each
        route's Deadline (two calls: a LIST, then a HEAD)."""
        self._client = client
        self._settings = settings
        self._clock = clock

    def status(self, space: str, upload_id: str) -> dict[str, Any]:
        """``uploaded`` (or, with UPLOAD_VERIFY, ``verified``; with UPLOAD_MALWARE_SCAN,
        ``scanning`` until then) with the object's metadata,
        ``rejected`` with the verifier's reason, or ``pending``. ``pending`` also covers
        ids never issued, and other callers' ids: with no state of its own, the service
        cannot tell those apart, and must not say that someone else's upload exists."""
        upload_id = parse_upload_id(upload_id)
        deadline = Deadline(clock=self._clock)
        try:
            return self.stored(space, upload_id, deadline).to_response()
        except UploadNotFound:
            pass
        if self._settings.verify:
            quarantined = self.find_key(self._settings.quarantine_prefix + space, upload_id,
                                        deadline)  # fmt: skip
            if quarantined is not None:
                held = self._tags(quarantined, deadline)
                return {"UUID": upload_id, "status": tags.REJECTED,
                        "reason": held.get(tags.REASON, "")}  # fmt: skip
        return {"UUID": upload_id, "status": "pending"}

    def downloadable(self, space: str, upload_id: str) -> StoredUpload:
        """The stored object, if it may be downloaded: with UPLOAD_VERIFY, only once it
        is verified (UploadConflict before); UploadNotFound if none."""
        upload = self.stored(space, upload_id)
        if self._settings.verify and upload.verdict != tags.VERIFIED:
            raise UploadConflict(
                f"upload {upload.upload_id} is not verified yet; allowed: a download once "
                "GET /uploads/{uuid} answers status 'verified' (it takes a few seconds)"
            )
        return upload

    def claim(self, space: str, upload_id: str) -> dict[str, Any]:
        """Mark the caller's upload claimed (tag ``upload-claimed=true``), so that the
        bucket's lifecycle rule for unclaimed uploads never deletes it. With UPLOAD_VERIFY
        only a verified upload can be claimed: the verifier then never writes its tags
        again, so it cannot overwrite the claim."""
        deadline = Deadline(clock=self._clock)
        upload = self.stored(space, upload_id, deadline, read_tags=True)
        if self._settings.verify and upload.verdict != tags.VERIFIED:
            raise UploadConflict(
                f"upload {upload.upload_id} is not verified yet; allowed: a claim once GET "
                "/uploads/{uuid} answers status 'verified'"
            )
        held = dict(upload.tags)
        held[tags.CLAIMED] = "true"
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors(_gone(upload.upload_id)):
            s3.put_object_tagging(
                Bucket=self._settings.bucket, Key=upload.key, Tagging=tags.as_tag_set(held)
            )
        return {"UUID": upload.upload_id, "key": upload.key, "claimed": True}

    @property
    def _unjudged(self) -> str | None:
        """What a stored upload not verified (yet) is: ``scanning`` where the verdict
        waits for a malware scan, else plain ``uploaded`` (None)."""
        return tags.SCANNING if self._settings.malware_scan else None

    def _tags(self, key: str, deadline: Deadline) -> dict[str, str]:
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors(_gone(key)):
            answer = s3.get_object_tagging(Bucket=self._settings.bucket, Key=key)
        return tags.as_dict(answer["TagSet"])

    def stored(
        self,
        space: str,
        upload_id: str,
        deadline: Deadline | None = None,
        read_tags: bool = False,
    ) -> StoredUpload:
        """The stored object for an upload id in ``space``; UploadNotFound if none. Its
        tags are read too with ``read_tags``, or with UPLOAD_VERIFY (for the verdict)."""
        upload_id = parse_upload_id(upload_id)
        deadline = deadline or Deadline(clock=self._clock)
        key = self.find_key(space, upload_id, deadline)
        if key is None:
            raise UploadNotFound(
                f"no upload {upload_id} is stored for you; allowed: the UUID of an upload "
                "you made, once its PUT or POST has succeeded"
            )
        # Deleted between the LIST and the HEAD: gone, as far as the caller can tell.
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors(_gone(upload_id)):
            # ChecksumMode: S3 then returns the checksum it stored, if any.
            head = s3.head_object(Bucket=self._settings.bucket, Key=key, ChecksumMode="ENABLED")
        held = self._tags(key, deadline) if read_tags or self._settings.verify else {}
        verified = self._settings.verify and tags.verified(
            held, head["ETag"], head.get("ContentType")
        )
        return StoredUpload(
            verdict=tags.VERIFIED if verified else self._unjudged,
            tags=held,
            upload_id=upload_id,
            key=key,
            size=head["ContentLength"],
            content_type=head.get("ContentType"),
            etag=head["ETag"],
            last_modified=head["LastModified"],
            filename=filename_from_metadata(head.get("Metadata", {})),
            checksum=stored_checksum(head),
        )

    def find_key(self, space: str, upload_id: str, deadline: Deadline) -> str | None:
        """The stored key for an upload id, whatever extension it was given, or None.

        One prefix LIST finds ``<uuid>`` and ``<uuid>.<ext>`` alike, and needs only
        ``s3:ListBucket`` on the prefix: a HEAD of a missing key without that permission
        would be answered 403, not 404.
        """
        prefix = upload_key(space, upload_id)
        s3 = deadline.reserve(CALL_WORST_CASE, self._client)
        with storage_errors():
            listed = s3.list_objects_v2(Bucket=self._settings.bucket, Prefix=prefix, MaxKeys=10)
        keys = [obj["Key"] for obj in listed.get("Contents", [])]
        # Keys are <uuid> or <uuid>.<ext>; anything else under the prefix is not ours.
        ours = [k for k in keys if k == prefix or k.startswith(prefix + ".")]
        return ours[0] if ours else None


def _gone(what: str) -> dict[str, ServiceError]:
    gone = UploadNotFound(f"no upload {what[-80:]} is stored for you")
    return {"404": gone, "NoSuchKey": gone}
