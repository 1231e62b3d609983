"""Multipart uploads through the API, in the shape Uppy's Companion speaks.

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

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chalicelib.errors import UploadConflict, UploadNotFound, UploadRejected
from chalicelib.keys import upload_id_in
from chalicelib.presign import Presigner
from chalicelib.rules import (
    POST_PARAMETERS,
    UploadRequest,
    object_headers,
    parse_md5,
    parse_request,
    single_values,
)
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
MAX_BATCH = 100
MAX_METADATA_FIELDS = 50
CREATE_FIELDS = ("filename", "type", "size", "metadata")
PARAMS_FIELDS = ("filename", "type")
# S3's upload ids are URL-safe base64-like strings; '/' '+' '=' arrive percent-encoded.
_MULTIPART_ID = re.compile(r"[A-Za-z0-9._~=+/-]{1,1024}")
# A part's ETag as S3 returns it: hex digits (SSE-KMS: other characters), quoted or not.
_ETAG = re.compile(r'"?[A-Za-z0-9_-]{1,126}"?')
_METADATA_PARAM = re.compile(r"metadata\[[^\]]{1,128}\]")


def max_part_count(limit: int) -> int:
    """The most parts an upload of at most ``limit`` bytes can need: every part but the
    last is at least 5 MiB, so beyond ``ceil(limit / 5 MiB)`` parts it is too big."""
    return min(MAX_PARTS, max(1, -(-limit // MIN_PART_SIZE)))


def owned_key(space: str, key: str | None) -> str:
    """``key``, if it is one this service issues inside ``space``; else UploadRejected."""
    if key is None or upload_id_in(space, key) is None:
        raise UploadRejected(
            f"key {str(key)[:200]!r} is not an upload key issued to you; allowed: the key "
            "returned by POST /s3/multipart"
        )
    return key


def parse_multipart_id(value: str) -> str:
    """A client-supplied S3 upload id, percent-decoded once (API Gateway may or may not
    have decoded the path already; a valid id contains no '%')."""
    decoded = unquote(value)
    if not _MULTIPART_ID.fullmatch(decoded):
        raise UploadRejected(
            f"upload id {value[:80]!r} is not valid; allowed: the uploadId returned by "
            "POST /s3/multipart"
        )
    return decoded


def parse_part_number(value: str, settings: Settings) -> int:
    """A part number from 1 to the most an upload within the size limit can have."""
    highest = max_part_count(settings.object_size_limit)
    number = int(value) if re.fullmatch(r"[0-9]{1,5}", value) else 0
    if not 1 <= number <= highest:
        raise UploadRejected(
            f"part number {value[:20]!r} is not valid; allowed: 1 to {highest}"
            + ("" if highest == MAX_PARTS else " (more parts would exceed UPLOAD_MAX_BYTES)")
        )
    return number


def parse_part_numbers(value: str | None, settings: Settings) -> list[int]:
    """The comma-separated ``partNumbers`` of a batch: 1 to 100 distinct part numbers."""
    items = (value or "").split(",")
    if not value or len(items) > MAX_BATCH:
        raise UploadRejected(
            f"partNumbers must list 1 to {MAX_BATCH} part numbers separated by commas, like '1,2,3'"
        )
    return sorted({parse_part_number(item.strip(), settings) for item in items})


def parse_create(body: Any, settings: Settings) -> UploadRequest:
    """The JSON body of ``POST /s3/multipart``: ``{filename, type, metadata, size}``.

    ``metadata`` (Uppy sends the file's name and type again) is accepted and not stored:
    the object keeps only its original filename. ``size``, when known, is checked up front.
    """
    if not isinstance(body, dict):
        raise UploadRejected(
            'the body must be a JSON object like {"filename": "video.mp4", "type": "video/mp4"}'
        )
    unknown = sorted(str(name)[:40] for name in body if name not in CREATE_FIELDS)
    if unknown:
        raise UploadRejected(f"unknown field {unknown}; allowed: {', '.join(CREATE_FIELDS)}")
    if not isinstance(body.get("metadata", {}), dict | None):
        raise UploadRejected("metadata must be a JSON object")
    params: dict[str, list[str]] = {}
    for field, param in (("filename", "filename"), ("type", "content_type"), ("size", "size")):
        value = body.get(field)
        if value is None or value == "":
            continue
        if field == "size" and (isinstance(value, bool) or not isinstance(value, int)):
            raise UploadRejected("size must be a whole number of bytes")
        if field != "size" and not isinstance(value, str):
            raise UploadRejected(f"{field} must be a string")
        params[param] = [str(value)]
    return parse_request(params, settings, ("filename", "content_type", "size"), multipart=True)


def parse_params_query(params: Mapping[str, Sequence[str]], settings: Settings) -> UploadRequest:
    """The query of ``GET /s3/params`` (Uppy's single-file form POST): ``filename``,
    ``type`` and any ``metadata[name]`` fields, which are accepted and not stored."""
    metadata = [name for name in params if _METADATA_PARAM.fullmatch(name)]
    if len(metadata) > MAX_METADATA_FIELDS:
        raise UploadRejected(f"at most {MAX_METADATA_FIELDS} metadata[...] fields are accepted")
    named = {
        "content_type" if name == "type" else name: values
        for name, values in params.items()
        if name not in metadata and not (name == "type" and values == [""])
    }
    return parse_request(named, settings, POST_PARAMETERS)


def parse_complete(body: Any) -> list[dict[str, Any]]:
    """The JSON body of ``.../complete``: ``{"parts": [{"PartNumber", "ETag"}, ...]}``,
    in ascending part order, as S3 demands."""
    example = '{"parts": [{"PartNumber": 1, "ETag": "\\"9b2cf535f27731c974343645a3985328\\""}]}'
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
        raise UploadRejected(f"the body must list 1 to {MAX_PARTS} parts, like {example}")
    checked: list[dict[str, Any]] = []
    for part in parts:
        number = part.get("PartNumber") if isinstance(part, dict) else None
        etag = part.get("ETag") if isinstance(part, dict) else None
        if (
            isinstance(number, bool)
            or not isinstance(number, int)
            or not 1 <= number <= MAX_PARTS
            or not isinstance(etag, str)
            or not _ETAG.fullmatch(etag)
        ):
            raise UploadRejected(
                f'part {str(part)[:100]} is not valid; allowed: {{"PartNumber": 1 to '
                f'{MAX_PARTS}, "ETag": the ETag S3 returned for that part}}'
            )
        if checked and number <= checked[-1]["PartNumber"]:
            raise UploadRejected("parts must be listed once each, in ascending PartNumber order")
        checked.append({"PartNumber": number, "ETag": etag})
    return checked


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

    def create(self, space: str, request: UploadRequest) -> dict[str, Any]:
        """Start an upload at ``<space><uuid>[.<ext>]``; S3 stores the type and filename
        given now with the object that the completion assembles."""
        upload_id, key = self._presigner.new_upload(space, request)
        params = object_params(object_headers(request))
        with storage_errors():
            created = self._client().create_multipart_upload(
                Bucket=self._settings.bucket, Key=key, **params
            )
        return {
            "key": key,
            "uploadId": created["UploadId"],
            "UUID": upload_id,
            "bucket": self._settings.bucket,
            "filename": request.filename,
            # Beyond Companion's shape: tells clients to send each part's md5 when signing.
            "part_md5_required": self._settings.require_md5,
        }

    def part_url(
        self, space: str, multipart_id: str, part: str, params: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        """A presigned UploadPart URL: ``{url, expires, headers}``. Query: ``key``, and
        ``md5`` (the part's, base64), which is then signed and required by S3."""
        query = single_values(params, ("key", "md5"))
        key = owned_key(space, query.get("key"))
        md5 = query.get("md5")
        number = parse_part_number(part, self._settings)
        if md5 is None and self._settings.require_md5:
            raise UploadRejected(
                "md5 is required: the base64 of this part's 16-byte MD5 digest "
                "(UPLOAD_REQUIRE_MD5 is on)"
            )
        if md5 is not None:
            md5 = parse_md5(md5)
        ticket = self._presigner.part_ticket(key, parse_multipart_id(multipart_id), number, md5)
        return {"url": ticket.url, "expires": ticket.expires_in, "headers": ticket.headers}

    def batch_urls(
        self, space: str, multipart_id: str, params: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        """Presigned UploadPart URLs for several parts: ``{presignedUrls: {"1": url}}``.
        Query: ``key`` and ``partNumbers`` (like ``1,2,3``)."""
        query = single_values(params, ("key", "partNumbers"))
        key = owned_key(space, query.get("key"))
        numbers = query.get("partNumbers")
        upload = parse_multipart_id(multipart_id)
        if self._settings.require_md5:
            raise UploadRejected(
                "batch signing is off because UPLOAD_REQUIRE_MD5 is on; allowed: "
                "GET /s3/multipart/{uploadId}/{partNumber}?key=...&md5=... for each part"
            )
        urls = {
            str(n): self._presigner.part_ticket(key, upload, n, None).url
            for n in parse_part_numbers(numbers, self._settings)
        }
        return {"presignedUrls": urls}

    def list_parts(
        self, space: str, multipart_id: str, params: Mapping[str, Sequence[str]]
    ) -> list[dict[str, Any]]:
        """Every part S3 holds for the upload, all pages: ``[{PartNumber, ETag, Size}]``."""
        key = owned_key(space, single_values(params, ("key",)).get("key"))
        upload = parse_multipart_id(multipart_id)
        return [
            {"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]}
            for p in self._parts(key, upload)
        ]

    def complete(
        self, space: str, multipart_id: str, params: Mapping[str, Sequence[str]], body: Any
    ) -> dict[str, Any]:
        """Assemble the listed parts into the object: ``{location, key, bucket, ...}``.

        The parts S3 holds are listed first: a missing one is named, and with
        UPLOAD_MAX_BYTES set, they are added up; over the limit, the upload is aborted (its
        parts are deleted) and refused. With UPLOAD_NO_OVERWRITE,
        ``If-None-Match: *`` makes S3 refuse to replace an existing object.
        """
        key = owned_key(space, single_values(params, ("key",)).get("key"))
        upload = parse_multipart_id(multipart_id)
        parts = parse_complete(body)
        # The parts S3 holds: whether the upload exists at all (NoSuchUpload, a 404), which
        # named parts are missing (said by number), and the total size.
        sizes = {p["PartNumber"]: p["Size"] for p in self._parts(key, upload)}
        missing = [p["PartNumber"] for p in parts if p["PartNumber"] not in sizes]
        if missing:
            held = ", ".join(map(str, sorted(sizes)[:20])) or "none"
            raise UploadRejected(
                f"part {missing[0]} was not uploaded; allowed: the parts S3 holds "
                f"({held}), with their ETags (GET /s3/multipart/{{uploadId}})"
            )
        if self._settings.max_bytes is not None:
            total = sum(sizes[p["PartNumber"]] for p in parts)
            if total > self._settings.max_bytes:
                self._abort(key, upload)
                raise UploadRejected(
                    f"the upload is {total} bytes, over the limit; allowed: at most "
                    f"{self._settings.max_bytes} bytes (UPLOAD_MAX_BYTES). It was aborted."
                )
        completion: dict[str, Any] = {
            "Bucket": self._settings.bucket,
            "Key": key,
            "UploadId": upload,
            "MultipartUpload": {"Parts": parts},
        }
        if self._settings.no_overwrite:
            completion["IfNoneMatch"] = "*"
        with storage_errors(self._refusals(key, upload)):
            done = self._completer().complete_multipart_upload(**completion)
        return {
            "location": done.get("Location"),
            "key": key,
            "bucket": self._settings.bucket,
            "etag": done.get("ETag"),
            "UUID": upload_id_in(space, key),
        }

    def abort(
        self, space: str, multipart_id: str, params: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        """Abort the upload and delete its parts; ``{}``, as Companion answers."""
        key = owned_key(space, single_values(params, ("key",)).get("key"))
        self._abort(key, parse_multipart_id(multipart_id))
        return {}

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
