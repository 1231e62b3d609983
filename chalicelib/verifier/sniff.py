"""Whether an upload's first bytes are what its declared Content-Type says.

A signed Content-Type is only the client's claim: S3 stores whatever bytes come with it.
The verifier (chalicelib/verifier/verify.py) reads the first :data:`HEAD_BYTES` of each new object
and asks :func:`content_problem`. The signatures are the ``filetype`` library's (imported
here only, so `GET /put-url`'s cold start never loads it).
"""

from __future__ import annotations

import re

from chalicelib.core.keys import extension
from chalicelib.core.media_types import SIGNATURE_TYPES, desktop_extension, saved_name
from chalicelib.core.media_types import normal as _normal
from chalicelib.core.rules import desktop_name_allowed, type_allowed
from chalicelib.core.settings import Settings

HEAD_BYTES = 8192  # enough for filetype's matchers, zip-based formats included
OCTET_STREAM = ("application/octet-stream", "binary/octet-stream")
MARKUP_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                "application/xml")  # fmt: skip
# Formats that are zip files inside: a zip signature is what they look like.
ZIP_BASED = ("application/epub+zip", "application/java-archive",
             "application/vnd.openxmlformats-officedocument.",
             "application/vnd.oasis.opendocument.")  # fmt: skip
# What a browser would take for a page (WHATWG's sniffing table, and SVG and XML): after
# white space and a byte-order mark, one of these tags followed by a space, ">" or "/".
_MARKUP = re.compile(
    rb"<(?:!doctype html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|"
    rb"p|img|svg|object|embed|meta|\?xml|!--|hta:application)(?=[\s>/]|$)",
    re.IGNORECASE,
)
_LEADING = b" \t\r\n\x0c\xef\xbb\xbf"
# Extensions a browser or a desktop opens as a page or a script, with the types they
# stand for: a key or a download name ending in one must hold that type.
SCRIPTABLE_EXTENSIONS = {
    "html": ("text/html",), "htm": ("text/html",), "shtml": ("text/html",),
    "xhtml": ("application/xhtml+xml",), "xht": ("application/xhtml+xml",),
    "svg": ("image/svg+xml",), "svgz": ("image/svg+xml",),
    "xml": ("text/xml", "application/xml"), "xsl": ("text/xml", "application/xml",
    "application/xslt+xml"), "xslt": ("application/xslt+xml", "application/xml"),
    "js": ("text/javascript", "application/javascript"),
    "mjs": ("text/javascript", "application/javascript"),
}  # fmt: skip


def looks_like_markup(head: bytes) -> bool:
    """True when the bytes start as an HTML, SVG or XML document would (after a BOM and
    white space): what a browser could render as a page."""
    return _MARKUP.match(head.lstrip(_LEADING)[:64]) is not None


def extension_problem(
    key: str, filename: str | None, declared: str | None, settings: Settings
) -> str | None:
    """Why the key's extension or the download name's does not fit the declared type, or
    None: a name that opens as a page or a script (``x.html`` holding ``image/png`` would
    run as HTML once downloaded and opened), or one that runs as a program on a desktop
    (``invoice.hta``) where the stage does not list its type exactly."""
    claimed = _normal(declared) if declared else OCTET_STREAM[0]
    for name in (key, filename or ""):
        ext = extension(saved_name(name))  # "page.html." is saved as "page.html"
        if ext in SCRIPTABLE_EXTENSIONS and claimed not in SCRIPTABLE_EXTENSIONS[ext]:
            return f"extension-mismatch: a .{ext} name holds {claimed}"
        if not desktop_name_allowed(name, declared, settings):
            return f"extension-not-allowed: a .{desktop_extension(name)} name runs as a program"
    return None


def sniffed_type(head: bytes) -> str | None:
    import filetype  # type: ignore[import-untyped]  # lazily: only the verifier needs it

    found = filetype.guess_mime(head)
    return None if found is None else _normal(found)


def known_signature(media_type: str) -> bool:
    """Whether filetype recognises this type by its bytes (then its absence tells)."""
    return media_type in SIGNATURE_TYPES


def content_problem(head: bytes, declared: str | None, settings: Settings) -> str | None:
    """Why these first bytes are not an upload of type ``declared``, or None when they
    may be; UPLOAD_ALLOWED_TYPES also applies to the type found. The answer starts with
    a short code: ``markup``, ``type-mismatch``, ``unknown-content`` (with
    UPLOAD_REQUIRE_KNOWN_TYPES) or ``type-not-allowed``, and holds only
    characters a tag value may (it is stored in the ``upload-reason`` tag as is)."""
    claimed = _normal(declared) if declared else OCTET_STREAM[0]
    if looks_like_markup(head) and claimed not in MARKUP_TYPES:
        return f"markup: the content is an HTML or SVG or XML document but declared {claimed}"
    found = sniffed_type(head)
    if found is None:
        if claimed not in OCTET_STREAM and known_signature(claimed):
            return f"type-mismatch: the content has no {claimed} signature"
        if settings.require_known_types:
            return f"unknown-content: the content matches no known signature (declared {claimed})"
        return None
    if claimed in OCTET_STREAM:
        if settings.allowed_types and not type_allowed(found, settings):
            return f"type-not-allowed: the content is {found} which is not an allowed type"
        return None
    if found == claimed or (found == "application/zip" and claimed.startswith(ZIP_BASED)):
        return None
    return f"type-mismatch: the content is {found} but declared {claimed}"
