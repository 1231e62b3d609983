"""The upload rules: what a client may ask for, and which headers S3 will then demand.

Every rule ends up as a *signed* header (or a POST-policy condition), so S3 itself refuses
a violating upload; the checks here only make the refusal early and readable.
"""

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from urllib.parse import quote, unquote

from chalicelib.core.checksums import check_checksum_given, checksum_headers, parse_checksum
from chalicelib.core.errors import UploadRejected
from chalicelib.core.keys import extension
from chalicelib.core.media_types import (
    DESKTOP_EXTENSIONS,
    SIGNATURE_TYPES,
    WILDCARD_TYPES,
    desktop_extension,
    normal,
    scriptable,
)
from chalicelib.core.settings import Settings
from chalicelib.core.tags import UNCLAIMED_HEADER

MAX_FILENAME_LENGTH = 255
MAX_CONTENT_TYPE_LENGTH = 255
# S3 refuses user metadata (x-amz-meta-* names and values, in UTF-8) over 2 KB.
MAX_METADATA_BYTES = 2048
DISPOSITIONS = ("attachment", "inline")
# The original filename travels with the object as user metadata (x-amz-meta-filename),
# percent-encoded: S3 metadata must be ASCII, and an HTTP header trims outer spaces.
FILENAME_METADATA = "filename"
FILENAME_HEADER = f"x-amz-meta-{FILENAME_METADATA}"
PUT_PARAMETERS = ("content_type", "disposition", "filename", "md5", "sha256", "size")
POST_PARAMETERS = ("content_type", "disposition", "filename")

# RFC 9110 media type: type "/" subtype *( ";" name "=" ( token / quoted-string ) ).
_TCHARS = r"[A-Za-z0-9!#$&^_.+-]+"
# Printable ASCII only: an HTTP header value must survive every client and proxy as is.
_QUOTED = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'
_CONTENT_TYPE = re.compile(
    rf"(?P<essence>{_TCHARS}/{_TCHARS})(?: *; *{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SIZE = re.compile(r"[0-9]{1,12}")


class UploadRequest(NamedTuple):
    """What a client asked for, validated against the operator's rules."""

    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    md5: str | None = None
    disposition: str | None = None
    sha256: str | None = None

    @property
    def extension(self) -> str:
        return extension(self.filename)

    def content_disposition(self) -> str | None:
        """The signed ``Content-Disposition`` header, only when the client asked for one."""
        if self.disposition is None or self.filename is None:
            return None
        return content_disposition(self.disposition, self.filename)


def content_disposition(disposition: str, filename: str) -> str:
    """``attachment`` or ``inline`` with a filename, as RFC 6266 spells it.

    The quoted ``filename`` is an ASCII fallback; ``filename*`` carries the exact name
    in UTF-8, so non-ASCII names survive without breaking the header.
    """
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def filename_metadata(filename: str) -> str:
    """The value stored as ``x-amz-meta-filename``: the name, percent-encoded as UTF-8."""
    return quote(filename, safe="")


def filename_from_metadata(metadata: Mapping[str, str]) -> str | None:
    """The original filename stored with an object, or None when none was given."""
    value = metadata.get(FILENAME_METADATA)
    return unquote(value, errors="replace") if value else None


def parse_request(
    params: Mapping[str, Sequence[str]],
    settings: Settings,
    allowed: Sequence[str],
    *,
    multipart: bool = False,
) -> UploadRequest:
    """Parse query parameters into an UploadRequest that obeys ``settings``' rules.

    ``allowed`` names the parameters the route accepts; anything else is refused, so a
    typo (``contenttype=``) cannot silently drop a rule the client meant to apply. A
    ``multipart`` upload may be larger than a single PUT, and need not say its size up
    front (the total is checked when it completes).
    """
    values = single_values(params, allowed)
    filename = _filename(values.get("filename"))
    content_type = _content_type(values.get("content_type"), settings)
    request = UploadRequest(
        filename=filename,
        content_type=content_type,
        size=_size(
            values.get("size"),
            settings,
            required="size" in allowed and not multipart,
            multipart=multipart,
        ),
        md5=parse_checksum("md5", values.get("md5")),
        sha256=parse_checksum("sha256", values.get("sha256")),
        disposition=_disposition(values.get("disposition"), filename, content_type),
    )
    if not desktop_name_allowed(filename, content_type, settings):
        ext = desktop_extension(filename)
        raise UploadRejected(
            f"filename ends in .{ext}, which runs as a program when opened on a desktop; "
            f"allowed: another name, or a content_type of {', '.join(DESKTOP_EXTENSIONS[ext])} "
            "where the stage lists it exactly in UPLOAD_ALLOWED_TYPES"
        )
    if "md5" in allowed:
        check_checksum_given(request.md5, request.sha256, settings)
    return request


def check_form_upload_allowed(settings: Settings) -> None:
    """Refuse a browser-form POST where the settings need what a POST policy cannot sign.

    A POST policy can pin the key, type and size range, but not a checksum S3 verifies
    (S3 neither checks nor stores a checksum form field) nor ``If-None-Match``; issuing
    one anyway would quietly bypass those rules.
    """
    missing = [
        name
        for name, on in (("UPLOAD_REQUIRE_CHECKSUM", settings.require_checksum),
                         ("UPLOAD_NO_OVERWRITE", settings.no_overwrite))
        if on
    ]  # fmt: skip
    if missing:
        raise UploadRejected(
            f"browser-form uploads are off because {' and '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} on, which a POST policy cannot enforce; "
            "allowed: /put-url with the headers it returns"
        )


def expect_no_parameters(params: Mapping[str, Sequence[str]]) -> None:
    """Refuse any query parameter, for routes that take none."""
    single_values(params, ())


def object_headers(request: UploadRequest) -> dict[str, str]:
    """What S3 stores with the object, as headers: its type, its Content-Disposition and
    its original name. The same for a PUT, a POST policy and a multipart upload."""
    headers: dict[str, str] = {}
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    disposition = request.content_disposition()
    if disposition is not None:
        headers["Content-Disposition"] = disposition
    if request.filename is not None:
        headers[FILENAME_HEADER] = filename_metadata(request.filename)
    return headers


def put_headers(request: UploadRequest, settings: Settings) -> dict[str, str]:
    """Exactly the headers the client must send with its PUT; each one is signed."""
    headers = object_headers(request)
    if request.size is not None:
        headers["Content-Length"] = str(request.size)
    # Signed headers, never query parameters: S3 verifies the bytes only then.
    headers.update(checksum_headers(request.md5, request.sha256))
    if settings.no_overwrite:
        headers["If-None-Match"] = "*"
    if settings.unclaimed_days is not None:
        # Stored with the tag the bucket's lifecycle rule expires (chalicelib/core/tags.py).
        headers["x-amz-tagging"] = UNCLAIMED_HEADER
    return headers


def single_values(params: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> dict[str, str]:
    """Each parameter given at most once, and only those ``allowed``; else UploadRejected."""
    allowed_list = ", ".join(allowed) or "none"
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise UploadRejected(f"unknown parameter {names}; allowed: {allowed_list}")
    values: dict[str, str] = {}
    for name, given in params.items():
        if len(given) != 1:
            raise UploadRejected(f"parameter {name!r} was given {len(given)} times; give it once")
        values[name] = unicode_text(name, given[0])
    return values


def unicode_text(name: str, value: str) -> str:
    """``value``, if it is text: a lone surrogate (JSON allows "\ud800") cannot be
    encoded as UTF-8, so it could reach no header, URL or metadata; UploadRejected."""
    if _SURROGATE.search(value):
        raise UploadRejected(f"parameter {name!r} is not valid Unicode text")
    return value


def _filename(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_FILENAME_LENGTH or _CONTROL.search(value):
        raise UploadRejected(
            f"filename must be 1 to {MAX_FILENAME_LENGTH} characters with no control "
            "characters; only its extension is used in the key"
        )
    stored = len(FILENAME_METADATA) + len(filename_metadata(value))
    if stored > MAX_METADATA_BYTES:
        raise UploadRejected(
            f"filename is {stored} bytes as stored metadata (percent-encoded UTF-8); "
            f"allowed: at most {MAX_METADATA_BYTES} bytes, S3's limit for user metadata"
        )
    return value


def _content_type(value: str | None, settings: Settings) -> str | None:
    allowed = ", ".join(settings.allowed_types)
    if value is None:
        if settings.allowed_types or settings.require_known_types:
            raise UploadRejected(f"content_type is required; allowed: {allowed or 'a type'}")
        return None
    match = _CONTENT_TYPE.fullmatch(value) if len(value) <= MAX_CONTENT_TYPE_LENGTH else None
    if match is None:
        raise UploadRejected(
            f"content_type {value[:80]!r} is not a media type; allowed: 'type/subtype' with "
            "optional '; name=value' parameters, like 'image/png'"
        )
    essence = match["essence"].lower()
    if settings.allowed_types and not type_allowed(essence, settings):
        raise UploadRejected(
            f"content_type {value!r} is not allowed; allowed: {allowed} (a wildcard admits "
            "the types known by their bytes, never a page, script or program)"
        )
    if settings.require_known_types and not _known(essence):
        raise UploadRejected(
            f"content_type {value!r} has no signature the verifier knows, and "
            "UPLOAD_REQUIRE_KNOWN_TYPES is on; allowed: a type recognised by its bytes, "
            "like image/png or application/pdf"
        )
    return value


def _known(essence: str) -> bool:
    return essence in SIGNATURE_TYPES and normal(essence) != "application/octet-stream"


def essence_of(content_type: str | None) -> str:
    """A media type without its parameters, lower-cased (``image/png; q=1`` -> ``image/png``);
    "" for none."""
    return (content_type or "").split(";")[0].strip().lower()


def type_allowed(essence: str, settings: Settings) -> bool:
    """Listed exactly, or under a wildcard; a wildcard admits only the types known by
    their bytes (``image/*`` is not ``image/x-foo``), and never a page, script or program
    (``image/svg+xml``, ``multipart/x-mixed-replace``, ``application/x-msdownload``): those
    must be listed one by one."""
    if essence in settings.allowed_types:
        return True
    kind = essence.split("/")[0]
    wildcard = any(p in (f"{kind}/*", "*/*") for p in settings.allowed_types)
    return wildcard and essence in WILDCARD_TYPES


def desktop_name_allowed(name: str | None, content_type: str | None, settings: Settings) -> bool:
    """Whether ``name`` may be stored as an upload's key or download name: one that runs
    as a program on a desktop (``invoice.hta``, ``setup.exe``) only with a type that
    stands for it which the stage lists exactly in UPLOAD_ALLOWED_TYPES."""
    ext = desktop_extension(name)
    essence = essence_of(content_type)
    return not ext or (essence in DESKTOP_EXTENSIONS[ext] and essence in settings.allowed_types)


def _size(
    value: str | None, settings: Settings, required: bool, multipart: bool = False
) -> int | None:
    limit = settings.object_size_limit if multipart else settings.size_limit
    allowed = f"allowed: 0 to {limit}"
    if value is None:
        if settings.max_bytes is not None and required:
            raise UploadRejected(f"size is required: the file's exact length in bytes; {allowed}")
        return None
    if not _SIZE.fullmatch(value):
        raise UploadRejected(f"size {value[:40]!r} is not a whole number of bytes; {allowed}")
    size = int(value)
    if size > limit:
        larger = not multipart and size <= settings.object_size_limit
        hint = " (larger files need a multipart upload: POST /s3/multipart)" if larger else ""
        raise UploadRejected(f"size {size} is too large; {allowed}{hint}")
    return size


def _disposition(value: str | None, filename: str | None, content_type: str | None) -> str | None:
    if value is None:
        return None
    if value not in DISPOSITIONS:
        raise UploadRejected(
            f"disposition {value[:40]!r} is not valid; allowed: {', '.join(DISPOSITIONS)}"
        )
    if filename is None:
        raise UploadRejected("disposition needs filename: the name to download the file as")
    if value == "inline" and (content_type is None or scriptable(essence_of(content_type))):
        raise UploadRejected(
            f"disposition 'inline' is not allowed for {content_type or 'an untyped upload'}: "
            "a browser would run its script; allowed: 'attachment', or 'inline' with a "
            "content_type that is not HTML, SVG, XML or JavaScript"
        )
    return value
