"""How upload object keys are named. Pure functions: no I/O, no settings lookups.

A key is ``<prefix><uuid>`` or ``<prefix><uuid>.<ext>``. The server generates the UUID, and
the only thing taken from the client's filename is a short letters-and-digits extension,
so no input can put a key outside the prefix.
"""

from __future__ import annotations

import os
import re

from chalicelib.core.errors import UploadRejected

MAX_EXTENSION_LENGTH = 16
_EXTENSION = re.compile(rf"[a-z0-9]{{1,{MAX_EXTENSION_LENGTH}}}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_upload_id() -> str:
    """A fresh upload id: a random (version 4) UUID in canonical lower-case form.

    Built from os.urandom as uuid.uuid4() builds it, without importing the uuid module
    (a few milliseconds at every cold start) or creating a UUID object per request.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def extension(filename: str | None) -> str:
    """The sanitised extension of a client's filename, or "" when it has none worth keeping.

    It is what follows the last dot of the last path segment, lower-cased, kept only if it is
    1 to 16 ASCII letters and digits: ``"Holiday.JPG"`` gives ``"jpg"``,
    ``"../../etc/passwd"`` and ``"a.tar.gz/"`` give ``""``.
    """
    if not filename:
        return ""
    base = re.split(r"[/\\]", filename)[-1]
    stem, dot, ext = base.rpartition(".")
    ext = ext.lower()
    return ext if dot and stem and _EXTENSION.fullmatch(ext) else ""


def upload_key(prefix: str, upload_id: str, ext: str = "") -> str:
    """The object key an upload is stored under: ``<prefix><uuid>[.<ext>]``.

    ``prefix`` comes from validated Settings and ends in '/'; ``upload_id`` is a canonical
    UUID that the server generated; ``ext`` comes from :func:`extension`.
    """
    return f"{prefix}{upload_id}.{ext}" if ext else f"{prefix}{upload_id}"


def upload_id_in(space: str, key: str) -> str | None:
    """The upload id of ``key`` if it is a key this service names inside ``space``
    (``<space><uuid>[.<ext>]``, as :func:`upload_key` builds it), else None."""
    if not key.startswith(space):
        return None
    upload_id, dot, ext = key[len(space) :].partition(".")
    if not _CANONICAL_UUID.fullmatch(upload_id) or (dot and not _EXTENSION.fullmatch(ext)):
        return None
    return upload_id


def parse_upload_id(value: str) -> str:
    """Check that a client-supplied upload id is a canonical UUID, as this service issues."""
    if not _CANONICAL_UUID.fullmatch(value):
        raise UploadRejected(
            f"upload id {value[:64]!r} is not valid; allowed: a UUID as returned by /put-url, "
            "like '3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b'"
        )
    return value


def issued_key(prefix: str, key: str, per_principal: bool) -> tuple[str | None, str] | None:
    """``(principal segment or None, upload id)`` when ``key`` is one this service issues
    under ``prefix`` (``<prefix>[<principal>/]<uuid>[.<ext>]``), else None. With
    ``per_principal`` (auth on) the key must sit in a caller's folder, else directly in
    the prefix."""
    if not key.startswith(prefix):
        return None
    principal: str | None = None
    space = prefix
    if per_principal:
        principal, slash, _ = key[len(prefix) :].partition("/")
        if not slash or not _PRINCIPAL_SEGMENT.fullmatch(principal):
            return None
        space = f"{prefix}{principal}/"
    upload_id = upload_id_in(space, key)
    return None if upload_id is None else (principal, upload_id)


# What chalicelib.core.auth.principal_segment produces: letters, digits, '-' and _XX escapes.
_PRINCIPAL_SEGMENT = re.compile(r"(?:[A-Za-z0-9-]|_[0-9A-F]{2}){1,1024}")
