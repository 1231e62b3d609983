"""The service's configuration: one frozen, validated object built from the environment.

Chalice sets a stage's ``environment_variables`` before a request in Lambda, in
``chalice local`` and in ``chalice.test.Client``, but the test client applies them only
*during* a request. So settings are read lazily (see app.py), never at import, with one
exception: the CORS origin, which API Gateway bakes into its OPTIONS response when the
app is packaged (see :func:`cors_allow_origin`).
"""

import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from chalicelib.core.errors import ConfigError

DEFAULT_PREFIX = "put_folder/"
DEFAULT_QUARANTINE_PREFIX = "quarantine/"
DEFAULT_URL_EXPIRES = 300
# SigV4 presigned URLs cannot be valid for longer than seven days.
MAX_URL_EXPIRES = 7 * 24 * 3600
DEFAULT_CORS_ALLOW_ORIGIN = "*"
DEFAULT_QUOTA_TABLE = "presigned-upload-quotas"
# S3 refuses a single PUT (or form POST) larger than 5 GiB; bigger files need multipart,
# up to S3's largest object, 5 TiB.
MAX_SINGLE_UPLOAD_BYTES = 5 * 1024**3
MAX_OBJECT_BYTES = 5 * 1024**4
# What a scan that ended without a result (UNSUPPORTED, ACCESS_DENIED, FAILED) gets.
UNSCANNED_CHOICES = ("reject", "allow")
QUOTA_VARIABLES = ("UPLOAD_QUOTA_FILES_PER_DAY", "UPLOAD_QUOTA_BYTES_PER_DAY",
                   "UPLOAD_QUOTA_STORED_BYTES")  # fmt: skip
# How long an unfinished multipart upload holds its quota reservation: the bucket's
# lifecycle rule discards its parts after deploy.abort_incomplete_multipart_days (1).
MULTIPART_RESERVATION_SECONDS = 2 * 86400

# Each is used with fullmatch: `$` would let a trailing newline through.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+\Z)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# S3's "safe characters" for keys, and '/' as the separator; no empty or dot segments.
# No '*', which S3 allows but an IAM resource or s3:prefix condition reads as a wildcard.
_PREFIX = re.compile(r"(?:[A-Za-z0-9!_.'()-]+/)+")
# Every region botocore knows (its partitions' patterns: us-east-1, cn-north-1,
# us-gov-west-1, us-isob-east-1, eusc-de-east-1, ...); tests/unit/test_signing.py checks.
_REGION = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-\d+")
SIGNING_BACKENDS = ("auto", "sigv4", "botocore")
_EVENT_BUS = re.compile(
    r"[A-Za-z0-9._/-]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._/-]{1,256}"
)
# An SSM parameter name ('/a/b' or 'name'), or a Secrets Manager secret's ARN.
_SSM_PARAMETER = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# A media type (RFC 6838 names) or a wildcard over its subtype: image/png, image/*, */*.
_TYPE_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_TYPE_PATTERN = re.compile(rf"(?:{_TYPE_NAME}/(?:{_TYPE_NAME}|\*))|\*/\*")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class Settings(NamedTuple):
    """Everything the service needs to issue upload URLs. Build it with :meth:`from_env`."""

    bucket: str
    region: str
    prefix: str = DEFAULT_PREFIX
    url_expires: int = DEFAULT_URL_EXPIRES
    endpoint_url: str | None = None
    # The upload rules, signed into every URL so that S3 itself enforces them.
    allowed_types: tuple[str, ...] = ()
    max_bytes: int | None = None
    # Every PUT and part must carry a checksum S3 verifies: md5 or sha256.
    require_checksum: bool = False
    no_overwrite: bool = False
    # Only types known by their bytes (chalicelib/core/media_types.py) are signed, and the
    # verifier rejects bytes that match no known signature.
    require_known_types: bool = False
    # auto: the own SigV4 signer where it builds the endpoint exactly as botocore would,
    # else botocore (chalicelib/core/signing.py); sigv4 / botocore: that one, always.
    signing_backend: str = "auto"
    # What lands is checked (chalicelib/verifier/verify.py): tagged verified or moved to quarantine.
    verify: bool = False
    quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX
    # Uploads carry the tag upload-claimed=false; the bucket's lifecycle rule deletes them
    # after this many days unless claimed (POST /uploads/{uuid}/claim).
    unclaimed_days: int | None = None
    # The verdict waits for GuardDuty's malware scan too (docs/security.md): verified only
    # once the scan found no threat in these very bytes.
    malware_scan: bool = False
    # A scan that ended UNSUPPORTED, ACCESS_DENIED or FAILED: reject, or allow.
    unscanned: str = "reject"
    # Where the verifier publishes "Upload Verified" / "Upload Rejected".
    event_bus: str = "default"
    webhook_url: str | None = None
    # The name of the SSM parameter (SecureString) or the ARN of the Secrets Manager
    # secret holding the webhook's HMAC key: never the key itself.
    webhook_secret: str | None = None
    # Per-principal quotas (chalicelib/quotas/), each off when unset, counted in a
    # DynamoDB table; a quota override per principal lives in that table.
    quota_files_per_day: int | None = None
    quota_bytes_per_day: int | None = None
    quota_stored_bytes: int | None = None
    quota_table: str = DEFAULT_QUOTA_TABLE
    # DynamoDB unreachable or throttling: refuse (503), or issue the URL uncounted.
    quota_fail_open: bool = False
    dynamodb_endpoint_url: str | None = None

    @property
    def quotas_on(self) -> bool:
        return (self.quota_files_per_day, self.quota_bytes_per_day,
                self.quota_stored_bytes) != (None, None, None)  # fmt: skip

    @property
    def size_limit(self) -> int:
        """The largest single PUT or POST allowed: UPLOAD_MAX_BYTES, at most S3's 5 GiB."""
        return min(self.object_size_limit, MAX_SINGLE_UPLOAD_BYTES)

    @property
    def object_size_limit(self) -> int:
        """The largest upload allowed by any route: UPLOAD_MAX_BYTES, or S3's 5 TiB."""
        return MAX_OBJECT_BYTES if self.max_bytes is None else self.max_bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        """Read and validate the settings; raise ConfigError naming the first bad variable."""
        region = _region(environ)
        return cls(
            bucket=_bucket(environ),
            region=_bucket_region(environ, region),
            prefix=_prefix(environ),
            url_expires=_int_in_range(
                environ, "UPLOAD_URL_EXPIRES", DEFAULT_URL_EXPIRES, 1, MAX_URL_EXPIRES
            ),
            endpoint_url=_endpoint_url(environ),
            allowed_types=_allowed_types(environ),
            max_bytes=_optional_int(environ, "UPLOAD_MAX_BYTES", 1, MAX_OBJECT_BYTES),
            require_checksum=_require_checksum(environ),
            no_overwrite=_flag(environ, "UPLOAD_NO_OVERWRITE"),
            require_known_types=_flag(environ, "UPLOAD_REQUIRE_KNOWN_TYPES"),
            signing_backend=_choice(environ, "SIGNING_BACKEND", SIGNING_BACKENDS),
            verify=_flag(environ, "UPLOAD_VERIFY"),
            quarantine_prefix=_quarantine_prefix(environ),
            unclaimed_days=_optional_int(environ, "UPLOAD_UNCLAIMED_DAYS", 1, 3650),
            malware_scan=_malware_scan(environ),
            unscanned=_choice(environ, "UPLOAD_UNSCANNED", UNSCANNED_CHOICES),
            event_bus=_event_bus(environ),
            webhook_url=_webhook_url(environ),
            webhook_secret=_webhook_secret(environ),
            quota_files_per_day=_optional_int(environ, "UPLOAD_QUOTA_FILES_PER_DAY", 1, 10**9),
            quota_bytes_per_day=_optional_int(environ, "UPLOAD_QUOTA_BYTES_PER_DAY", 1, 10**15),
            quota_stored_bytes=_optional_int(environ, "UPLOAD_QUOTA_STORED_BYTES", 1, 10**15),
            quota_table=_quota_table(environ),
            quota_fail_open=_flag(environ, "UPLOAD_QUOTA_FAIL_OPEN"),
            dynamodb_endpoint_url=_endpoint_url(environ, "AWS_ENDPOINT_URL_DYNAMODB"),
        )


def cors_allow_origin(environ: Mapping[str, str]) -> str:
    """The origin browsers may call the API from: ``*`` or one ``scheme://host[:port]``.

    Read when app.py is imported, because ``chalice package`` turns it into API Gateway's
    OPTIONS response; Chalice applies the stage's variables before that import.
    """
    value = environ.get("CORS_ALLOW_ORIGIN", DEFAULT_CORS_ALLOW_ORIGIN)
    if value != "*" and not _ORIGIN.fullmatch(value):
        raise ConfigError(
            f"CORS_ALLOW_ORIGIN={value!r} is invalid; allowed: '*' or one origin "
            "like 'https://app.example.com' (scheme, host and optional port, no path)"
        )
    return value


def quotas_on(environ: Mapping[str, str]) -> bool:
    """Whether any UPLOAD_QUOTA_* limit is set, read at import by app.py (the event
    function then also reconciles what lands) and by `make package` (the table)."""
    names = (
        "UPLOAD_QUOTA_FILES_PER_DAY",
        "UPLOAD_QUOTA_BYTES_PER_DAY",
        "UPLOAD_QUOTA_STORED_BYTES",
    )
    return any(environ.get(name, "").strip() for name in names)


def verification_on(environ: Mapping[str, str]) -> bool:
    """UPLOAD_VERIFY, read at import by app.py (whether to register the verifier) and by
    `make package` (whether the template has it)."""
    return _flag(environ, "UPLOAD_VERIFY")


def malware_scan_on(environ: Mapping[str, str]) -> bool:
    """UPLOAD_MALWARE_SCAN, read at import by app.py (whether the verifier's rule also
    takes GuardDuty's scan results) and by infra/package.py."""
    return _flag(environ, "UPLOAD_MALWARE_SCAN")


def _require_checksum(environ: Mapping[str, str]) -> bool:
    """UPLOAD_REQUIRE_CHECKSUM; UPLOAD_REQUIRE_MD5 is its old name, still read so that a
    deployment configured with it keeps the rule (now met by md5 or sha256)."""
    new, old = "UPLOAD_REQUIRE_CHECKSUM", "UPLOAD_REQUIRE_MD5"
    if old not in environ:
        return _flag(environ, new)
    if new in environ and _flag(environ, new) != _flag(environ, old):
        raise ConfigError(f"{new} and {old} disagree; allowed: {new} alone ({old} is its old name)")
    return _flag(environ, old)


def _quarantine_prefix(environ: Mapping[str, str]) -> str:
    value = _prefix(environ, "UPLOAD_QUARANTINE_PREFIX", DEFAULT_QUARANTINE_PREFIX)
    uploads = _prefix(environ)
    if value.startswith(uploads) or uploads.startswith(value):
        raise ConfigError(
            f"UPLOAD_QUARANTINE_PREFIX={value!r} overlaps UPLOAD_PREFIX={uploads!r}; allowed: "
            "a folder outside the uploads, like 'quarantine/' (the download route must never "
            "reach it)"
        )
    return value


def _malware_scan(environ: Mapping[str, str]) -> bool:
    on = _flag(environ, "UPLOAD_MALWARE_SCAN")
    if on and not _flag(environ, "UPLOAD_VERIFY"):
        raise ConfigError(
            "UPLOAD_MALWARE_SCAN needs UPLOAD_VERIFY=true: the scan's result is part of the "
            "verifier's verdict; allowed: set both, or neither"
        )
    return on


def _event_bus(environ: Mapping[str, str]) -> str:
    value = environ.get("UPLOAD_EVENT_BUS", "").strip() or "default"
    if not _EVENT_BUS.fullmatch(value):
        raise ConfigError(
            f"UPLOAD_EVENT_BUS={value[:80]!r} is invalid; allowed: an EventBridge bus name "
            "(letters, digits and ._-/, at most 256) or its ARN"
        )
    return value


def _webhook_url(environ: Mapping[str, str]) -> str | None:
    value = environ.get("UPLOAD_WEBHOOK_URL", "").strip()
    if not value:
        return None
    loopback = re.match(r"http://(127\.0\.0\.1|localhost)(:\d{1,5})?/", value)
    if not (value.startswith("https://") or loopback) or len(value) > 2048 or " " in value:
        raise ConfigError(
            f"UPLOAD_WEBHOOK_URL={value[:80]!r} is invalid; allowed: an https:// URL "
            "(http:// only to 127.0.0.1 or localhost, for local development)"
        )
    if not environ.get("UPLOAD_WEBHOOK_SECRET", "").strip():
        raise ConfigError(
            "UPLOAD_WEBHOOK_URL needs UPLOAD_WEBHOOK_SECRET: the name of an SSM parameter "
            "or the ARN of a Secrets Manager secret holding the signing key"
        )
    return value


def _webhook_secret(environ: Mapping[str, str]) -> str | None:
    value = environ.get("UPLOAD_WEBHOOK_SECRET", "").strip()
    if not value:
        return None
    if not (_SSM_PARAMETER.fullmatch(value) or _SECRET_ARN.fullmatch(value)):
        raise ConfigError(
            "UPLOAD_WEBHOOK_SECRET is not a parameter name or secret ARN; allowed: the name of "
            "an SSM SecureString parameter, like '/uploads/webhook-key', or the ARN of a "
            "Secrets Manager secret (the key itself never goes in the environment)"
        )
    return value


def _bucket(environ: Mapping[str, str]) -> str:
    value = environ.get("UPLOAD_BUCKET", "")
    if not value:
        raise ConfigError("UPLOAD_BUCKET is required; set it to the name of the upload bucket")
    if not _BUCKET.fullmatch(value):
        raise ConfigError(
            f"UPLOAD_BUCKET={value!r} is not a valid S3 bucket name; allowed: 3 to 63 "
            "lower-case letters, digits, dots and hyphens, starting and ending with a "
            "letter or digit"
        )
    return value


def _prefix(
    environ: Mapping[str, str], name: str = "UPLOAD_PREFIX", default: str = DEFAULT_PREFIX
) -> str:
    value = environ.get(name, default)
    segments = value.split("/")[:-1]
    if not _PREFIX.fullmatch(value) or any(s in (".", "..") for s in segments) or len(value) > 512:
        raise ConfigError(
            f"{name}={value!r} is invalid; allowed: one or more folder names ending "
            "in '/', like 'put_folder/' or 'uploads/incoming/', made of letters, digits "
            "and !_.'()- (no leading '/', no '.' or '..' folders, at most 512 characters)"
        )
    return value


def _int_in_range(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _optional_int(environ, name, low, high)
    return default if value is None else value


def _optional_int(environ: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number; allowed: {low} to {high}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; allowed: {low} to {high}")
    return value


def _allowed_types(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get("UPLOAD_ALLOWED_TYPES", "")
    patterns = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    bad = [p for p in patterns if not _TYPE_PATTERN.fullmatch(p)]
    if bad:
        raise ConfigError(
            f"UPLOAD_ALLOWED_TYPES has invalid entries {bad}; allowed: a comma-separated list "
            "of media types or subtype wildcards, like 'image/*, application/pdf'"
        )
    return patterns


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise ConfigError(f"{name}={environ[name]!r} is invalid; allowed: {', '.join(allowed)}")
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "")
    value = raw.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(
            f"{name}={raw!r} is not a boolean; allowed: true/false, 1/0, yes/no, on/off"
        )
    return value in _TRUE


def _region(environ: Mapping[str, str]) -> str:
    # Lambda always sets AWS_REGION; AWS_DEFAULT_REGION is the CLI/SDK convention elsewhere.
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = environ.get(name, "")
        if value:
            return _checked_region(name, value)
    raise ConfigError(
        "AWS_REGION is not set; set AWS_REGION or AWS_DEFAULT_REGION to the bucket's "
        "region, like 'eu-west-1'"
    )


def _bucket_region(environ: Mapping[str, str], default: str) -> str:
    # AWS_REGION is reserved in Lambda (the function's own region), so a bucket that lives
    # elsewhere needs its own variable, or S3 would answer the browser with a 307.
    value = environ.get("UPLOAD_BUCKET_REGION", "")
    return _checked_region("UPLOAD_BUCKET_REGION", value) if value else default


def _checked_region(name: str, value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ConfigError(f"{name}={value!r} is not an AWS region; allowed: names like 'eu-west-1'")
    return value


def _endpoint_url(environ: Mapping[str, str], name: str = "AWS_ENDPOINT_URL_S3") -> str | None:
    value = environ.get(name, "")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"{name}={value!r} is invalid; allowed: an http(s) URL with a host "
            "and optional port and no path, like 'http://127.0.0.1:4566'"
        )
    return value.rstrip("/")


def _quota_table(environ: Mapping[str, str]) -> str:
    value = environ.get("UPLOAD_QUOTA_TABLE", "").strip() or DEFAULT_QUOTA_TABLE
    if not _TABLE.fullmatch(value):
        raise ConfigError(
            f"UPLOAD_QUOTA_TABLE={value[:80]!r} is invalid; allowed: a DynamoDB table name, "
            "3 to 255 letters, digits and _.-"
        )
    return value
