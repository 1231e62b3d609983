"""``POST /s3/sign``: Uppy 6's ``signRequest``, under the service's rules.

`@uppy/aws-s3` 6 with a ``signRequest`` function calls it with each S3 request it is
about to send (PutObject, CreateMultipartUpload, UploadPart, ListParts,
CompleteMultipartUpload, AbortMultipartUpload, DeleteObject), and expects ``{url,
headers?, fields?, key?}`` (its ``lib/s3-client/types.d.ts``). The app's function
forwards the request here with the user's token. Each rule still ends up as something S3
enforces for whoever holds the URL:

- the key: the server names it (``key`` in the answer overrides Uppy's on PutObject and
  CreateMultipartUpload), and later requests are signed only for keys in the caller's
  space;
- the type allowlist: a POST-policy condition on PutObject, a signed ``Content-Type`` on
  CreateMultipartUpload (Uppy's create request names no type, so it is the one the key's
  extension stands for, in Python's built-in table);
- the size limit: the POST policy's ``content-length-range``; at completion, the parts
  are listed, refused over the limit, and their total is signed as
  ``x-amz-mp-object-size``, so S3 refuses parts changed after signing;
- no-overwrite: ``If-None-Match: *`` signed on the completion;
- the part-number cap.

Where a rule cannot hold on this path, the request is refused with a message naming it:
Uppy sends no checksums (UPLOAD_REQUIRE_CHECKSUM), and a POST policy cannot carry
``If-None-Match`` (UPLOAD_NO_OVERWRITE, for single files: ``shouldUseMultipart: () =>
true`` sends every file as multipart instead).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from chalicelib.core.errors import UploadRejected
from chalicelib.core.keys import extension
from chalicelib.core.presign import Presigner, Reserve
from chalicelib.core.rules import (
    UploadRequest,
    desktop_name_allowed,
    essence_of,
    parse_request,
    unicode_text,
)
from chalicelib.core.settings import MULTIPART_RESERVATION_SECONDS, Settings
from chalicelib.core.tags import UNCLAIMED_HEADER
from chalicelib.multipart.companion import owned_key, parse_multipart_id, parse_part_number
from chalicelib.multipart.service import Multipart, UploadRef

FIELDS = ("method", "key", "uploadId", "partNumber", "contentType", "expiresIn")
MAX_KEY_LENGTH = 1024


@dataclass(frozen=True)
class SignRequest:
    """One request Uppy is about to send, as its ``signRequest`` describes it."""

    operation: str
    key: str
    upload_id: str | None = None
    part_number: str | None = None
    content_type: str | None = None


def parse(body: Any) -> SignRequest:
    """The JSON body of ``POST /s3/sign``: Uppy's ``PresignableRequest``."""
    example = '{"method": "PUT", "key": "photo.jpg", "contentType": "image/jpeg"}'
    if not isinstance(body, dict):
        raise UploadRejected(
            f"the body must be the request Uppy passes to signRequest, like {example}"
        )
    unknown = sorted(str(name)[:40] for name in body if name not in FIELDS)
    if unknown:
        raise UploadRejected(f"unknown field {unknown}; allowed: {', '.join(FIELDS)}")
    method, key = body.get("method"), body.get("key")
    upload_id, part_number = body.get("uploadId"), body.get("partNumber")
    content_type, expires_in = body.get("contentType"), body.get("expiresIn")
    if not isinstance(method, str):
        raise UploadRejected("method must be a string: PUT, POST, GET or DELETE")
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise UploadRejected(f"key must be a string of 1 to {MAX_KEY_LENGTH} characters")
    unicode_text("key", key)
    for name, value in (("uploadId", upload_id), ("contentType", content_type)):
        if value is not None and not isinstance(value, str):
            raise UploadRejected(f"{name} must be a string")
        if value is not None:
            unicode_text(name, value)
    for name, value in (("partNumber", part_number), ("expiresIn", expires_in)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise UploadRejected(f"{name} must be a whole number")
    operation = {
        ("PUT", False, False): "PutObject",
        ("PUT", True, True): "UploadPart",
        ("POST", False, False): "CreateMultipartUpload",
        ("POST", True, False): "CompleteMultipartUpload",
        ("GET", True, False): "ListParts",
        ("DELETE", True, False): "AbortMultipartUpload",
        ("DELETE", False, False): "DeleteObject",
    }.get((method, upload_id is not None, part_number is not None))
    if operation is None:
        raise UploadRejected(
            f"method {str(method)[:10]!r} with these fields is not a request Uppy signs; "
            "allowed: PUT (PutObject, or UploadPart with uploadId and partNumber), POST "
            "(CreateMultipartUpload, or CompleteMultipartUpload with uploadId), GET and "
            "DELETE with uploadId (ListParts, AbortMultipartUpload)"
        )
    return SignRequest(operation, key, upload_id,
                       None if part_number is None else str(part_number), content_type)  # fmt: skip


@functools.cache
def _types() -> Any:
    """Python's own table of types by extension, without the host's /etc/mime.types (the
    same answer on every machine with the same Python version); built on first use, off
    GET /put-url's cold start."""
    import mimetypes

    return mimetypes.MimeTypes(filenames=())


def type_of_extension(ext: str) -> str | None:
    """The media type a file extension stands for, or None."""
    guessed: str | None = _types().guess_type(f"file.{ext}", strict=False)[0]
    return guessed


class RequestSigner:
    """Signs Uppy's S3 requests in a caller's key space, under the settings' rules."""

    def __init__(self, settings: Settings, presigner: Presigner, multipart: Multipart) -> None:
        self._settings = settings
        self._presigner = presigner
        self._multipart = multipart

    def sign(self, space: str, request: SignRequest,
             reserve: Reserve | None = None) -> dict[str, Any]:  # fmt: skip
        """The presigned answer Uppy expects: ``{url, headers?, fields?, key?}``. The
        requests that can create an object (PutObject, CreateMultipartUpload) are counted
        against the caller's quotas by ``reserve`` before their URL goes out."""
        if self._settings.require_checksum:
            raise UploadRejected(
                "POST /s3/sign is off because UPLOAD_REQUIRE_CHECKSUM is on: Uppy sends no "
                "checksum; allowed: the project's browser client (browser/presigned-upload.js),"
                " or /put-url and the /s3/multipart routes with sha256"
            )
        if request.operation == "PutObject":
            return self._put_object(space, request, reserve)
        if request.operation == "CreateMultipartUpload":
            return self._create(space, request, reserve)
        if request.operation == "DeleteObject":
            raise UploadRejected(
                "deleting an object is not offered; allowed: PutObject and the multipart "
                "requests (an upload in progress is removed by AbortMultipartUpload)"
            )
        assert request.upload_id is not None
        upload = UploadRef(owned_key(space, request.key), parse_multipart_id(request.upload_id))
        if request.operation == "UploadPart":
            assert request.part_number is not None
            number = parse_part_number(request.part_number, self._settings)
            ticket = self._presigner.part_ticket(upload.key, upload.multipart_id, number, {})
            return {"url": ticket.url}
        headers = {}
        if request.operation == "CompleteMultipartUpload":
            headers = self._multipart.completion_headers(upload)
        url = self._presigner.multipart_request(
            request.operation, upload.key, upload.multipart_id, headers
        )
        return {"url": url, "headers": headers} if headers else {"url": url}

    def _put_object(self, space: str, request: SignRequest,
                    reserve: Reserve | None) -> dict[str, Any]:  # fmt: skip
        """A POST policy: the only way S3 bounds the size of a single file that Uppy
        sends without saying its size."""
        if self._settings.no_overwrite:
            raise UploadRejected(
                "single-file uploads are off because UPLOAD_NO_OVERWRITE is on: S3 bounds "
                "their size only with a POST policy, which cannot carry If-None-Match; "
                "allowed: multipart (Uppy: shouldUseMultipart: () => true)"
            )
        params = {} if request.content_type is None else {"content_type": [request.content_type]}
        upload = parse_request(params, self._settings, ("content_type",))
        ext = extension(request.key)
        if ext and (
            type_of_extension(ext) != essence_of(upload.content_type)
            or not desktop_name_allowed(request.key, upload.content_type, self._settings)
        ):
            # The key's extension must not claim another type than the one stored: a
            # ".html" key holding an "image/png" would open as HTML once downloaded; nor
            # one that runs as a program, unless the stage lists its type exactly.
            ext = ""
        ticket = self._presigner.post_ticket(space, upload, extension=ext or None)
        if reserve is not None:
            reserve(ticket.upload_id, ticket.max_bytes, ticket.expires_in)
        return {"url": ticket.url, "fields": ticket.fields, "key": ticket.key}

    def _create(self, space: str, request: SignRequest,
                reserve: Reserve | None) -> dict[str, Any]:  # fmt: skip
        ext = extension(request.key)
        guessed = type_of_extension(ext) if ext else None
        params = {} if guessed is None else {"content_type": [guessed]}
        if guessed is None and self._settings.allowed_types:
            raise UploadRejected(
                f"the type of {request.key[-80:]!r} is not known from its extension, and "
                f"only these types are allowed: {', '.join(self._settings.allowed_types)}; "
                "allowed: a key ending in an extension of one of them (Uppy's default key "
                "ends in the file's name)"
            )
        upload = parse_request(params, self._settings, ("content_type",), multipart=True)
        # An extension the table does not know stands for no type the object is stored
        # with (none is signed): it is dropped, as for a single file; so is one that runs
        # as a program, unless the stage lists its type exactly.
        if not desktop_name_allowed(request.key, upload.content_type, self._settings):
            guessed = None
        upload_id, key = self._presigner.new_upload(space, UploadRequest(), guessed and ext)
        if reserve is not None:
            reserve(upload_id, self._settings.object_size_limit, MULTIPART_RESERVATION_SECONDS)
        headers = {"Content-Type": upload.content_type} if upload.content_type else {}
        if self._settings.unclaimed_days is not None:
            headers["x-amz-tagging"] = UNCLAIMED_HEADER
        url = self._presigner.multipart_request("CreateMultipartUpload", key, None, headers)
        answer: dict[str, Any] = {"url": url, "key": key}
        if headers:
            answer["headers"] = headers
        return answer
