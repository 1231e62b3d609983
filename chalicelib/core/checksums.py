"""Checksums S3 verifies: parsing a client's digests, the signed headers that carry them,
and reading back what S3 stored.

S3 checks an upload's bytes against ``Content-MD5`` or ``x-amz-checksum-sha256`` when the
header is *signed* into the URL, and refuses a mismatch with 400 BadDigest. A SHA-256 (or
CRC) checksum is also stored with the object and returned by HeadObject with
``ChecksumMode=ENABLED``; an MD5 is not (a multipart object's ETag is not one).
"""

import base64
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.core.errors import UploadRejected
from chalicelib.core.settings import Settings

# The checksums a client may give, by query parameter: the header, the digest's name and
# length in bytes, and an example (the digest of no bytes).
CHECKSUMS = {
    "md5": ("Content-MD5", "MD5", 16, "1B2M2Y8AsgTpgAmY7PhCfg=="),
    "sha256": ("x-amz-checksum-sha256", "SHA-256", 32,
               "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
}  # fmt: skip
SHA256_HEADER = CHECKSUMS["sha256"][0]
# The algorithm a multipart upload may be created with (its parts then each need one).
MULTIPART_ALGORITHMS = {"sha256": "SHA256"}
# What S3 may store, strongest first: the one reported when several are.
STORED_ALGORITHMS = ("SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32")


def parse_checksum(name: str, value: str | None) -> str | None:
    """A base64 digest (``md5`` or ``sha256``) as S3 expects it in the checksum's header,
    or None when none was given; UploadRejected when it is not one."""
    if value is None:
        return None
    _, digest_name, length, example = CHECKSUMS[name]
    # An unencoded '+' in a query string arrives as a space; base64 never contains one.
    value = value.replace(" ", "+")
    try:
        digest = base64.b64decode(value, validate=True)
    except ValueError:
        digest = b""
    if len(digest) != length or base64.b64encode(digest).decode() != value:
        raise UploadRejected(
            f"{name} {value[:60]!r} is not valid; allowed: the base64 of the {length}-byte "
            f"{digest_name} digest, like {example!r}"
        )
    return value


def check_checksum_given(
    md5: str | None, sha256: str | None, settings: Settings, part: bool = False
) -> None:
    """Refuse a PUT or part with no checksum where UPLOAD_REQUIRE_CHECKSUM is on."""
    if settings.require_checksum and md5 is None and sha256 is None:
        sha256_part = ', for an upload created with "checksum": "sha256", which S3 then '
        sha256_part += "demands on every part"
        raise UploadRejected(
            f"a checksum of {'this part' if part else 'the file'}'s bytes is required "
            "(UPLOAD_REQUIRE_CHECKSUM is on); allowed: sha256 (the base64 of the 32-byte "
            f"SHA-256 digest, which browsers compute with crypto.subtle.digest"
            f"{sha256_part if part else ''}) or md5 (the base64 of the 16-byte MD5 digest)"
            f"{'' if part else ', or both'}"
        )


def checksum_headers(md5: str | None, sha256: str | None) -> dict[str, str]:
    """The signed headers that make S3 check the bytes against these digests."""
    headers: dict[str, str] = {}
    if md5 is not None:
        headers["Content-MD5"] = md5
    if sha256 is not None:
        headers[SHA256_HEADER] = sha256
    return headers


def parse_multipart_algorithm(value: Any) -> str | None:
    """The ``checksum`` of a multipart upload's create body: ``"sha256"`` or absent."""
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in MULTIPART_ALGORITHMS:
        raise UploadRejected(
            f"checksum {str(value)[:40]!r} is not supported; allowed: "
            f"{', '.join(repr(a) for a in MULTIPART_ALGORITHMS)}, or none"
        )
    return MULTIPART_ALGORITHMS[value.lower()]


class StoredChecksum(NamedTuple):
    """A checksum S3 stored with an object: ``COMPOSITE`` for a multipart object whose
    parts were checked (the checksum of the parts' checksums, ``<base64>-<parts>``),
    else ``FULL_OBJECT`` (the checksum of all the bytes)."""

    algorithm: str
    value: str
    type: str

    def to_response(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "value": self.value, "type": self.type}


def stored_checksum(response: Mapping[str, Any]) -> StoredChecksum | None:
    """The checksum in a HeadObject (with ``ChecksumMode=ENABLED``) or
    CompleteMultipartUpload answer, or None when S3 stored none."""
    for algorithm in STORED_ALGORITHMS:
        value = response.get(f"Checksum{algorithm}")
        if value:
            composite = "-" in value
            kind = response.get("ChecksumType") or ("COMPOSITE" if composite else "FULL_OBJECT")
            return StoredChecksum(algorithm, value, kind)
    return None
