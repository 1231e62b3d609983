"""Building the S3 client (once per container, by app.py, then injected), and turning
S3's failures into the domain's errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.core.errors import ServiceError, StorageMisconfigured, StorageUnavailable
from chalicelib.core.logs import log_s3_error
from chalicelib.core.settings import Settings

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_s3 import S3Client


T = TypeVar("T")

# Bounds for the routes that call S3. API Gateway gives up after 29 s, so every route
# must answer (or 503) within ROUTE_BUDGET; botocore's defaults (60 s reads, several
# attempts) would outlast it. Each call's worst case follows from these values
# (worst_case), and a route reserves it from its Deadline before making the call.
ROUTE_BUDGET = 28.0  # API Gateway's 29 s, less a second for Lambda and the network
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 3
ATTEMPTS = 2  # in all, the first included
# CompleteMultipartUpload may legitimately take S3 long for a large object: one attempt,
# a longer read, and room left in the budget for one ListParts page before it.
SLOW_READ_TIMEOUT = 17
# botocore's standard retry mode waits at most 1 s before the first retry (throttling;
# 50 ms otherwise), raised by up to 5 s more when S3 sends x-amz-retry-after.
MAX_BACKOFF = 6.0


def worst_case(attempts: int, read_timeout: float) -> float:
    """The longest one S3 call can take with this client configuration."""
    return attempts * (CONNECT_TIMEOUT + read_timeout) + (attempts - 1) * MAX_BACKOFF


CALL_WORST_CASE = worst_case(ATTEMPTS, READ_TIMEOUT)  # 14 s
COMPLETE_WORST_CASE = worst_case(1, SLOW_READ_TIMEOUT)  # 18 s


class Deadline:
    """A route's time budget. ``reserve(worst, client)`` before each S3 call: a call that
    might not finish within the budget is not started, and the route answers 503 instead
    (the client retries; every S3-calling route is safe to retry). The client is built
    first, so the time a container's first S3 call spends importing boto3 (seconds at a
    128 MB function's CPU share) counts too. So a route's worst case is at most
    ROUTE_BUDGET by construction, whatever the number of calls it makes."""

    def __init__(
        self, budget: float = ROUTE_BUDGET, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._end = clock() + budget

    def reserve(self, seconds: float, client: Callable[[], T]) -> T:
        """``client()``, once a call of at most ``seconds`` made with it still fits. The
        client is built among S3's errors: credentials that cannot be found or fetched
        (a profile, the container endpoint of SnapStart) are a 503, as an outage is."""
        with storage_errors():
            built = client()
        if self._clock() + seconds > self._end:
            raise StorageUnavailable(
                "S3 is answering too slowly to finish within API Gateway's 29 s; try again shortly"
            )
        return built

    def remaining(self) -> float:
        """Seconds left of the budget (work after the S3 calls, such as a quota's, gets
        no more)."""
        return max(0.0, self._end - self._clock())


# boto3's parameter for each header an object request may carry.
_HEADER_PARAMS = {
    "Content-Type": "ContentType",
    "Content-Length": "ContentLength",
    "Content-MD5": "ContentMD5",
    "Content-Disposition": "ContentDisposition",
    "If-None-Match": "IfNoneMatch",
    "x-amz-checksum-sha256": "ChecksumSHA256",
    "x-amz-mp-object-size": "MpuObjectSize",
    "x-amz-tagging": "Tagging",
}
_INTEGER_HEADERS = ("Content-Length", "x-amz-mp-object-size")
METADATA_PREFIX = "x-amz-meta-"


def object_params(headers: Mapping[str, str]) -> dict[str, Any]:
    """boto3's parameters for these headers (``x-amz-meta-*`` become ``Metadata``)."""
    params: dict[str, Any] = {}
    for name, value in headers.items():
        if name.lower().startswith(METADATA_PREFIX):
            params.setdefault("Metadata", {})[name[len(METADATA_PREFIX) :]] = value
        else:
            params[_HEADER_PARAMS[name]] = int(value) if name in _INTEGER_HEADERS else value
    return params


def make_s3_client(settings: Settings, read_timeout: int = READ_TIMEOUT) -> S3Client:
    """The service's S3 client (see :func:`client_config` for how it is configured)."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=client_config(settings, read_timeout),
    )


def make_client(service: str) -> Any:
    """A client of another AWS service (``events``, ``ssm``, ``secretsmanager``) in the
    function's own region, with the same bounded timeouts and attempts as S3's. Its
    endpoint is the SDK's, or ``AWS_ENDPOINT_URL_<SERVICE>`` (the local stack's)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"})  # fmt: skip
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def client_config(settings: Settings, read_timeout: int = READ_TIMEOUT) -> Config:
    """How the S3 client signs and waits, so that its URLs work from browsers and curl.

    - ``signature_version="s3v4"``: without it botocore still presigns legacy SigV2 URLs
      in some regions, which S3 rejects for newer regions and KMS-encrypted buckets.
    - ``us_east_1_regional_endpoint="regional"`` plus the bucket's own region: URLs point at
      ``<bucket>.s3.<region>.amazonaws.com``. The global endpoint answers requests for a
      bucket created in the last day with a 307 redirect, and browsers will not resend a
      PUT body across a redirect that fails CORS.
    - ``addressing_style="virtual"``: with "auto", botocore presigns against the global
      ``<bucket>.s3.amazonaws.com`` in every region. (A bucket name with dots still gets a
      path-style URL, so that TLS matches the certificate.)
    - path-style addressing for a custom endpoint (a local S3 on loopback), because
      ``<bucket>.127.0.0.1`` does not resolve.
    """
    from botocore.config import Config

    return Config(
        signature_version="s3v4",
        region_name=settings.region,
        s3={
            "addressing_style": "path" if settings.endpoint_url else "virtual",
            "us_east_1_regional_endpoint": "regional",
        },
        # Presigning needs no network; these bound the routes that later do call S3.
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        # total_max_attempts counts the first attempt; botocore's max_attempts counts only
        # the retries (max_attempts=2 is three attempts). One slow call is already most of
        # the budget: do not repeat it.
        retries={
            "total_max_attempts": ATTEMPTS if read_timeout <= READ_TIMEOUT else 1,
            "mode": "standard",
        },
    )


# The IAM action each S3 call needs (the stage's policy file must grant it).
_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}
_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken")
_REGION = (
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
)


def misconfiguration(code: str, operation: str) -> StorageMisconfigured:
    """What to fix when S3 refuses the service's own request with ``code``."""
    if code == "NoSuchBucket":
        fix = "the bucket does not exist; check UPLOAD_BUCKET"
    elif code == "AccessDenied":
        action = _ACTIONS.get(operation, f"the {operation} call")
        fix = f"the function's role may not {action}; grant it in .chalice/policy-<stage>.json"
    elif code in _CREDENTIALS:
        fix = "the service's AWS credentials were refused; check the function's role"
    elif code in _REGION:
        fix = "the bucket is in another region; set UPLOAD_BUCKET_REGION to it"
    else:
        fix = "see the log for S3's error"
    return StorageMisconfigured(f"S3 refused the service's {operation} ({code}): {fix}")


@contextmanager
def storage_errors(known: Mapping[str, ServiceError] | None = None) -> Iterator[None]:
    """Turn S3's refusals named in ``known`` (by error code) into those domain errors,
    outages into StorageUnavailable (503), and any other refusal, which the request
    cannot have caused, into StorageMisconfigured (a named 500 saying what to fix, and
    S3's code logged at ERROR)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if known and code in known:
            raise known[code] from exc
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
            raise StorageUnavailable(f"S3 is unavailable ({code}); try again shortly") from exc
        log_s3_error(code, exc.operation_name, status)
        raise misconfiguration(code, exc.operation_name) from exc
    except BotoCoreError as exc:
        # Connection refused, DNS failure, timeouts: after the client's bounded retries.
        raise StorageUnavailable(
            f"S3 could not be reached ({type(exc).__name__}); try again shortly"
        ) from exc
