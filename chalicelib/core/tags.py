"""The object tags that carry an upload's verdict and whether the app claimed it.

S3 keeps them with the object, so the service stays stateless: the verifier writes
``upload-status`` (``verified`` or ``rejected``) and ``upload-reason``; every upload is
stored with ``upload-claimed=false`` when UPLOAD_UNCLAIMED_DAYS is set (the bucket's
lifecycle rule deletes those after that many days), and a claim sets it to ``true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import TaggingTypeDef, TagTypeDef

STATUS = "upload-status"
REASON = "upload-reason"
CLAIMED = "upload-claimed"
# What the verdict is about: the bytes (their ETag) and the declared type. An object
# replaced after it was judged (a PutObjectTagging racing a new PUT puts the old verdict
# on the new object) is not taken as verified, and its own event judges it.
ETAG = "upload-etag"
TYPE = "upload-type"
VERIFIED, REJECTED = "verified", "rejected"
# Not a tag: what GET /uploads/{uuid} says of a stored upload whose verdict awaits the
# malware scan (UPLOAD_MALWARE_SCAN).
SCANNING = "scanning"
# The x-amz-tagging header of a PUT (URL-encoded query form), and the same as the XML
# form field of a POST policy.
UNCLAIMED_HEADER = f"{CLAIMED}=false"
UNCLAIMED_XML = (
    f"<Tagging><TagSet><Tag><Key>{CLAIMED}</Key><Value>false</Value></Tag></TagSet></Tagging>"
)
# What S3 accepts in a tag value: letters, digits, spaces and + - = . _ : / @ (256 at most).
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")


def tag_value(text: str) -> str:
    """``text`` as a valid tag value: other characters become spaces, cut to 256."""
    return _NOT_ALLOWED.sub(" ", text)[:256]


def readable_value(text: str) -> str:
    """``text`` as a valid tag value that reads well: each run of other characters becomes
    one space, cut to 256."""
    return " ".join(_NOT_ALLOWED.sub(" ", text).split())[:256]


def etag_value(etag: str) -> str:
    """An ETag as a tag value (no quotes)."""
    return tag_value(etag.strip('"'))


def judged(etag: str, content_type: str | None) -> dict[str, str]:
    """The tags naming what a verdict is about: an object holding them (see :func:`about`)
    had these very bytes and type judged."""
    return {ETAG: etag_value(etag), TYPE: tag_value(content_type or "")}


def about(held: Mapping[str, str], etag: str, content_type: str | None) -> bool:
    """Whether the verdict in ``held`` is about the object with this ETag and type."""
    return all(held.get(k) == v for k, v in judged(etag, content_type).items())


def verified(held: Mapping[str, str], etag: str, content_type: str | None) -> bool:
    """Whether these tags say that this object (ETag and type) was verified."""
    return held.get(STATUS) == VERIFIED and about(held, etag, content_type)


def as_dict(tag_set: Iterable[TagTypeDef]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def as_tag_set(tags: Mapping[str, str]) -> TaggingTypeDef:
    return {"TagSet": [{"Key": key, "Value": value} for key, value in tags.items()]}


def as_header(tags: Mapping[str, str]) -> str:
    """The ``Tagging`` parameter of CopyObject or CreateMultipartUpload (query form)."""
    from urllib.parse import urlencode

    return urlencode(tags)
