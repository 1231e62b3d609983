"""Uppy Companion's wire format: parsing its requests and shaping its answers.

`@uppy/aws-s3` in companion mode (``new AwsS3({endpoint: API_BASE})``) calls these routes
with these bodies and reads these answers; nothing else in the service knows that
format. Services take and return typed values (chalicelib/multipart/service.py, presign.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from chalicelib.core.checksums import parse_checksum, parse_multipart_algorithm
from chalicelib.core.errors import UploadRejected
from chalicelib.core.keys import upload_id_in
from chalicelib.core.presign import PartTicket, PostTicket
from chalicelib.core.rules import POST_PARAMETERS, UploadRequest, parse_request, single_values
from chalicelib.core.settings import Settings
from chalicelib.multipart.service import (
    MAX_BATCH,
    MAX_PARTS,
    Completed,
    CompletedPart,
    Created,
    ListedPart,
    UploadRef,
    max_part_count,
)

Query = Mapping[str, Sequence[str]]
MAX_METADATA_FIELDS = 50
CREATE_FIELDS = ("filename", "type", "size", "metadata", "checksum")
# S3's upload ids are URL-safe base64-like strings; '/' '+' '=' arrive percent-encoded.
_MULTIPART_ID = re.compile(r"[A-Za-z0-9._~=+/-]{1,1024}")
# A part's ETag as S3 returns it: hex digits (SSE-KMS: other characters), quoted or not.
_ETAG = re.compile(r'"?[A-Za-z0-9_-]{1,126}"?')
_METADATA_PARAM = re.compile(r"metadata\[[^\]]{1,128}\]")


# -- requests --------------------------------------------------------------------------


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


def parse_ref(space: str, multipart_id: str, query: Query, extra: Sequence[str] = ()) -> UploadRef:
    """The upload a request names: its ``{uploadId}`` path segment and ``key`` parameter,
    which must be a key of the caller's own space."""
    values = single_values(query, ("key", *extra))
    return UploadRef(owned_key(space, values.get("key")), parse_multipart_id(multipart_id))


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


PART_PARAMETERS = ("md5", "sha256", "size")


@dataclass(frozen=True)
class PartQuery:
    """What a part's URL signs beyond its number: the part's ``md5`` and ``sha256``
    (base64), and its ``size`` (``Content-Length``), each None when not given."""

    md5: str | None
    sha256: str | None
    size: int | None


def parse_part_query(query: Query, settings: Settings) -> PartQuery:
    """The part's checksums and size. A size, when given, is signed as its Content-Length
    so that S3 refuses a part of any other length: at most 5 GiB (S3's part limit) and
    UPLOAD_MAX_BYTES."""
    values = single_values(query, ("key", *PART_PARAMETERS))
    size = values.get("size")
    limit = settings.size_limit  # S3's 5 GiB per part, or less
    if size is not None and not (re.fullmatch(r"[0-9]{1,11}", size) and 0 < int(size) <= limit):
        raise UploadRejected(
            f"size {size[:20]!r} is not a part's size; allowed: 1 to {limit} bytes, the "
            "exact length of this part"
        )
    return PartQuery(parse_checksum("md5", values.get("md5")),
                     parse_checksum("sha256", values.get("sha256")),
                     None if size is None else int(size))  # fmt: skip


def parse_batch_numbers(query: Query, settings: Settings) -> list[int]:
    return parse_part_numbers(single_values(query, ("key", "partNumbers")).get("partNumbers"),
                              settings)  # fmt: skip


def parse_create(body: Any, settings: Settings) -> tuple[UploadRequest, str | None]:
    """The JSON body of ``POST /s3/multipart``: ``{filename, type, metadata, size,
    checksum}``, as the request and the checksum algorithm (``"SHA256"`` or None).

    ``metadata`` (Uppy sends the file's name and type again) is accepted and not stored:
    the object keeps only its original filename. ``size``, when known, is checked up front.
    ``checksum`` (beyond Companion's shape): ``"sha256"`` makes S3 demand and verify a
    SHA-256 on every part, and store the object's composite checksum.
    """
    if not isinstance(body, dict):
        raise UploadRejected(
            'the body must be a JSON object like {"filename": "video.mp4", "type": "video/mp4"}'
        )
    unknown = sorted(str(name)[:40] for name in body if name not in CREATE_FIELDS)
    if unknown:
        raise UploadRejected(f"unknown field {unknown}; allowed: {', '.join(CREATE_FIELDS)}")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict | None):
        raise UploadRejected("metadata must be a JSON object")
    if metadata and len(metadata) > MAX_METADATA_FIELDS:
        raise UploadRejected(
            f"metadata has {len(metadata)} entries; allowed: at most {MAX_METADATA_FIELDS}"
        )
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
    request = parse_request(params, settings, ("filename", "content_type", "size"), multipart=True)
    return request, parse_multipart_algorithm(body.get("checksum"))


def parse_params_query(params: Query, settings: Settings) -> UploadRequest:
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


def parse_complete(body: Any) -> list[CompletedPart]:
    """The JSON body of ``.../complete``: ``{"parts": [{"PartNumber", "ETag"}, ...]}``,
    in ascending part order, as S3 demands."""
    example = '{"parts": [{"PartNumber": 1, "ETag": "\\"9b2cf535f27731c974343645a3985328\\""}]}'
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
        raise UploadRejected(f"the body must list 1 to {MAX_PARTS} parts, like {example}")
    checked: list[CompletedPart] = []
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
        if checked and number <= checked[-1].number:
            raise UploadRejected("parts must be listed once each, in ascending PartNumber order")
        checked.append(CompletedPart(number, etag))
    return checked


# -- answers ---------------------------------------------------------------------------


def created_answer(created: Created) -> dict[str, Any]:
    """``POST /s3/multipart``: Companion's ``{key, uploadId}``, and more."""
    return {
        "key": created.key,
        "uploadId": created.multipart_id,
        "UUID": created.upload_id,
        "bucket": created.bucket,
        "filename": created.filename,
        # Beyond Companion's shape: the algorithm S3 demands on every part ("sha256"), and
        # whether the service requires a checksum (md5 or sha256) when signing each part.
        "checksum": created.checksum.lower() if created.checksum else None,
        "checksum_required": created.checksum_required,
        # Its name before SHA-256 (client 1.0 reads it to send each part's md5).
        "part_md5_required": created.checksum_required,
    }


def part_answer(ticket: PartTicket) -> dict[str, Any]:
    """``GET /s3/multipart/{uploadId}/{partNumber}``: ``{url, expires, headers}``."""
    return {"url": ticket.url, "expires": ticket.expires_in, "headers": dict(ticket.headers)}


def batch_answer(urls: Mapping[int, str]) -> dict[str, Any]:
    """``GET .../batch``: ``{presignedUrls: {"1": url, ...}}``."""
    return {"presignedUrls": {str(number): url for number, url in urls.items()}}


def parts_answer(parts: Sequence[ListedPart]) -> list[dict[str, Any]]:
    """``GET /s3/multipart/{uploadId}``: ``[{PartNumber, ETag, Size}]``, and each part's
    ``ChecksumSHA256`` when S3 stored one (an upload created with ``checksum: sha256``)."""
    return [
        {"PartNumber": p.number, "ETag": p.etag, "Size": p.size}
        | ({"ChecksumSHA256": p.checksum_sha256} if p.checksum_sha256 else {})
        for p in parts
    ]


def completed_answer(completed: Completed) -> dict[str, Any]:
    """``POST .../complete``: ``{location, key, bucket, etag, UUID, checksum}``."""
    return {
        "location": completed.location,
        "key": completed.key,
        "bucket": completed.bucket,
        "etag": completed.etag,
        "UUID": completed.upload_id,
        "checksum": completed.checksum.to_response() if completed.checksum else None,
    }


def params_answer(ticket: PostTicket) -> dict[str, Any]:
    """``GET /s3/params``: the form POST Uppy's AwsS3 plugin sends for a single file."""
    return {
        "method": "POST",
        "url": ticket.url,
        "fields": dict(ticket.fields),
        "expires": ticket.expires_in,
        "headers": {},
        "UUID": ticket.upload_id,
        "key": ticket.key,
    }
