"""AWS Signature Version 4 for S3 presigned URLs and POST policies: hmac and hashlib only.

A presigned URL is a few HMAC-SHA256 operations over a canonical request; importing
botocore and building a client to compute them costs hundreds of milliseconds at a cold
start and about 20 times the signing time on every request. This module computes the
same bytes as botocore's ``generate_presigned_url`` and ``generate_presigned_post`` for
the requests this service signs (tests/unit/test_sigv4.py compares them, and checks
AWS's published examples). botocore stays the reference, and the fallback for the S3
endpoints this module does not know (see :meth:`Endpoint.for_settings`).

References: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
and https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
"""

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
ISO8601 = "%Y-%m-%dT%H:%M:%SZ"


@functools.lru_cache(maxsize=8)
def formatted(moment: datetime, fmt: str) -> str:
    """``moment.strftime(fmt)``, computed once per second and format: every URL signed
    in the same second has the same X-Amz-Date and, for one lifetime, the same expiry."""
    return moment.strftime(fmt)


@functools.lru_cache(maxsize=8)
def signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    """SigV4's signing key: four HMACs, the same for a day's signatures with one secret,
    region and service, so derived once a day for each (S3's URLs, DynamoDB's calls)."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


# The partitions whose S3 endpoints this module builds itself, by botocore's own region
# patterns (botocore/data/partitions.json), and their DNS suffixes. Any other region
# (aws-eusc, the ISO partitions, one added later) is signed by botocore, whose endpoint
# rules know it; tests/unit/test_signing.py checks these against botocore's data.
PARTITIONS = (
    ("aws", re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+"), "amazonaws.com"),
    ("aws-cn", re.compile(r"cn-\w+-\d+"), "amazonaws.com.cn"),
    ("aws-us-gov", re.compile(r"us-gov-\w+-\d+"), "amazonaws.com"),
)


def dns_suffix(region: str) -> str | None:
    """The DNS suffix of S3's endpoints in ``region``, if its partition is one this
    module builds endpoints for; None for any other."""
    for _name, pattern, suffix in PARTITIONS:
        if pattern.fullmatch(region):
            return suffix
    return None


# The value objects below are named tuples, not dataclasses: this module is on every
# cold start's path, and `dataclasses` (with `inspect`) plus generating each class's
# methods cost more than the rest of the module (docs/benchmarks.md).

# No extra headers or form fields: shared and read-only.
NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Credentials(NamedTuple):
    """What signs: a key pair, the session token of temporary credentials, and when they
    expire, if that is known. Its repr never shows the secret or the token."""

    access_key: str
    secret_key: str
    token: str | None = None
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, expires_at={self.expires_at!r})"


class Endpoint(NamedTuple):
    """Where a bucket's objects are addressed, as botocore addresses them with this
    service's client configuration (SigV4, regional endpoint, virtual-hosted style, path
    style for a custom endpoint or a bucket name with dots)."""

    scheme: str
    netloc: str
    host: str  # the signed Host header: lower case, without a default port
    bucket_in_path: bool
    bucket: str

    @classmethod
    def for_settings(cls, bucket: str, region: str, endpoint_url: str | None) -> "Endpoint | None":
        """The endpoint, or None where botocore's rules should decide."""
        if endpoint_url:
            parts = urlsplit(endpoint_url)
            host = parts.hostname or ""
            default = {"http": 80, "https": 443}.get(parts.scheme)
            if parts.port is not None and parts.port != default:
                host = f"{host}:{parts.port}"
            return cls(parts.scheme, parts.netloc, host, True, bucket)
        suffix = dns_suffix(region)
        if suffix is None:
            return None
        service_host = f"s3.{region}.{suffix}"
        if "." in bucket:  # virtual hosting would break TLS: botocore falls back to paths
            return cls("https", service_host, service_host, True, bucket)
        host = f"{bucket}.{service_host}"
        return cls("https", host, host, False, bucket)

    def path(self, key: str) -> str:
        """The URL path of an object, encoded as botocore encodes it (and as it is
        signed: S3 signs the path as sent, without normalising it)."""
        encoded = key if _UNRESERVED_PATH.fullmatch(key) else quote(key.encode(), safe="/~")
        return f"/{self.bucket}/{encoded}" if self.bucket_in_path else f"/{encoded}"

    def post_url(self) -> str:
        """Where a browser form POSTs to: the bucket's address."""
        return (
            f"{self.scheme}://{self.netloc}/{self.bucket}"
            if self.bucket_in_path
            else (f"{self.scheme}://{self.netloc}/")
        )


# Characters SigV4 leaves unencoded; most of what is signed needs no encoding at all, and
# skipping quote() for it is most of the time a URL takes.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")


def _encode(value: str) -> str:
    return value if _UNRESERVED.fullmatch(value) else quote(value.encode(), safe="-_.~")


class _Scope(NamedTuple):
    credentials: Credentials
    day: str
    key: bytes
    scope: str
    credential: str  # access key and scope, encoded for the query string
    token: str | None  # encoded for the query string

    def __repr__(self) -> str:
        return f"_Scope(credential={self.credential!r})"


class Signed(NamedTuple):
    """A signed URL (or POST policy) and when it stops working."""

    url: str
    signed_at: datetime
    expires_in: int
    fields: Mapping[str, str] = NO_HEADERS

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + timedelta(seconds=self.expires_in)


class Signer:
    """Signs S3 requests for one bucket and region with SigV4.

    The signing key depends only on the secret, the day and the region, so it is derived
    once a day (four HMACs) and each URL then costs one HMAC and one SHA-256, plus
    building the canonical request.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        region: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._endpoint = endpoint
        self._region = region
        self._clock = clock
        self._scope_cache: _Scope | None = None

    def _scope(self, credentials: Credentials, day: str) -> _Scope:
        """What stays the same for a day's signatures with these credentials: the signing
        key (four HMACs) and the encoded credential and token."""
        cached = self._scope_cache
        if cached is not None and cached.day == day and cached.credentials == credentials:
            return cached
        key = signing_key(credentials.secret_key, day, self._region, "s3")
        scope = f"{day}/{self._region}/s3/aws4_request"
        token = None if credentials.token is None else _encode(credentials.token)
        fresh = _Scope(credentials, day, key, scope,
                       _encode(f"{credentials.access_key}/{scope}"), token)  # fmt: skip
        self._scope_cache = fresh
        return fresh

    def presign(
        self,
        credentials: Credentials,
        method: str,
        key: str,
        expires_in: int,
        params: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> Signed:
        """A presigned URL for ``method`` on ``key``: ``params`` are the operation's query
        parameters in the order botocore serialises them, ``headers`` the headers the
        client must send (each one is signed)."""
        now = self._clock().replace(microsecond=0)
        amz_date = formatted(now, AMZ_DATE)
        day = amz_date[:8]
        scope = self._scope(credentials, day)
        host = self._endpoint.host
        if headers:
            canonical_headers = {"host": host}
            for name, value in headers.items():
                canonical_headers[name.lower()] = " ".join(value.split())
            names = sorted(canonical_headers)
            signed_headers = ";".join(names)
            header_block = "".join(f"{n}:{canonical_headers[n]}\n" for n in names)
        else:
            signed_headers, header_block = "host", f"host:{host}\n"
        # Already encoded: names and values, operation parameters first, as botocore does.
        pairs = [(_encode(k), _encode(v)) for k, v in params]
        pairs += [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", scope.credential),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", _encode(signed_headers)),
        ]
        if scope.token is not None:
            pairs.append(("X-Amz-Security-Token", scope.token))
        query = "&".join([f"{k}={v}" for k, v in pairs])
        path = self._endpoint.path(key)
        canonical_request = (
            f"{method}\n{path}\n{'&'.join([f'{k}={v}' for k, v in sorted(pairs)])}\n"
            f"{header_block}\n{signed_headers}\n{UNSIGNED_PAYLOAD}"
        )
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{scope.scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.digest(scope.key, string_to_sign.encode(), "sha256").hex()
        url = (
            f"{self._endpoint.scheme}://{self._endpoint.netloc}{path}?{query}"
            f"&X-Amz-Signature={signature}"
        )
        return Signed(url, now, expires_in)

    def policy_signature(self, credentials: Credentials, day: str, encoded_policy: str) -> str:
        """The signature of a base64-encoded POST policy: it is the string to sign."""
        key = self._scope(credentials, day).key
        return hmac.digest(key, encoded_policy.encode(), "sha256").hex()

    def presign_post(
        self,
        credentials: Credentials,
        key: str,
        expires_in: int,
        fields: dict[str, str],
        conditions: list[Any],
    ) -> Signed:
        """A POST policy for ``key``, with botocore's field and condition order: the
        given ones, then bucket and key, then the signing fields."""
        now = self._clock()
        amz_date = now.strftime(AMZ_DATE)
        credential = f"{credentials.access_key}/{amz_date[:8]}/{self._region}/s3/aws4_request"
        signing = {
            "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": credential,
            "x-amz-date": amz_date,
        }
        if credentials.token is not None:
            signing["x-amz-security-token"] = credentials.token
        policy = {
            "expiration": (now + timedelta(seconds=expires_in)).strftime(ISO8601),
            "conditions": [
                *conditions,
                {"bucket": self._endpoint.bucket},
                {"key": key},
                *({name: value} for name, value in signing.items()),
            ],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        signature = self.policy_signature(credentials, amz_date[:8], encoded)
        signed_fields = {**fields, "key": key, **signing, "policy": encoded,
                         "x-amz-signature": signature}  # fmt: skip
        return Signed(
            self._endpoint.post_url(), now.replace(microsecond=0), expires_in, signed_fields
        )


def authorization_headers(
    credentials: Credentials,
    method: str,
    host: str,
    body: bytes,
    headers: Mapping[str, str],
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """SigV4 in the ``Authorization`` header, as botocore's ``SigV4Auth`` signs a JSON API
    call (DynamoDB's, for quotas): ``POST /`` with no query, ``host``, ``headers`` and
    ``X-Amz-Date`` signed, the body's SHA-256 in the canonical request. Returns the
    headers to add: ``X-Amz-Date``, ``X-Amz-Security-Token`` (temporary credentials) and
    ``Authorization``. tests/unit/test_sigv4.py compares them with botocore's."""
    amz_date = formatted(now.replace(microsecond=0), AMZ_DATE)
    added = {"X-Amz-Date": amz_date}
    if credentials.token is not None:
        added["X-Amz-Security-Token"] = credentials.token
    canonical = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical.update({name.lower(): value for name, value in added.items()})
    canonical["host"] = host
    names = sorted(canonical)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([
        method, "/", "", "".join(f"{name}:{canonical[name]}\n" for name in names),
        signed_headers, hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = (
        f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    )
    key = signing_key(credentials.secret_key, amz_date[:8], region, service)
    signature = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return added
