"""Whether an upload happened, read from S3 itself: the service keeps no state of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from chalicelib.errors import StorageUnavailable
from chalicelib.keys import parse_upload_id, upload_key
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class UploadStatus:
    """Reports ``uploaded`` (with the object's metadata) or ``pending`` for an upload id."""

    def __init__(self, client: S3Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def status(self, upload_id: str) -> dict[str, Any]:
        """The upload's state. ``pending`` also covers ids that were never issued: with no
        state of its own, the service cannot tell those apart."""
        upload_id = parse_upload_id(upload_id)
        key = self.find_key(upload_id)
        if key is None:
            return {"UUID": upload_id, "status": "pending"}
        with storage_errors():
            head = self._client.head_object(Bucket=self._settings.bucket, Key=key)
        return {
            "UUID": upload_id,
            "status": "uploaded",
            "key": key,
            "size": head["ContentLength"],
            "content_type": head.get("ContentType"),
            "etag": head["ETag"],
            "last_modified": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def find_key(self, upload_id: str) -> str | None:
        """The stored key for an upload id, whatever extension it was given, or None.

        One prefix LIST finds ``<uuid>`` and ``<uuid>.<ext>`` alike, and needs only
        ``s3:ListBucket`` on the prefix: a HEAD of a missing key without that permission
        would be answered 403, not 404.
        """
        prefix = upload_key(self._settings.prefix, upload_id)
        with storage_errors():
            listed = self._client.list_objects_v2(
                Bucket=self._settings.bucket, Prefix=prefix, MaxKeys=10
            )
        keys = [obj["Key"] for obj in listed.get("Contents", [])]
        # Keys are <uuid> or <uuid>.<ext>; anything else under the prefix is not ours.
        ours = [k for k in keys if k == prefix or k.startswith(prefix + ".")]
        return ours[0] if ours else None


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn S3 outages into StorageUnavailable (503); other S3 errors propagate."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
            raise StorageUnavailable(f"S3 is unavailable ({code}); try again shortly") from exc
        raise
    except BotoCoreError as exc:
        # Connection refused, DNS failure, timeouts: after the client's bounded retries.
        raise StorageUnavailable(
            f"S3 could not be reached ({type(exc).__name__}); try again shortly"
        ) from exc
