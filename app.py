"""HTTP routes only: parse the request, call one service, return a dict.

Every view is registered with ``@route``, which hands it a :class:`Call`: the services
(built lazily, once per container), the caller's key space, and the request's input. It
also maps domain errors to HTTP statuses, along the class hierarchy, in one place. The
Companion/Uppy wire format is chalicelib/multipart/companion.py's. Three settings are read at
import: the CORS origin and the authorizer (``AUTH_MODE``), because ``chalice package``
writes them into API Gateway, and ``LOG_LEVEL``, for the request log's middleware.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import (
    Authorizer,
    BadRequestError,
    Chalice,
    ChaliceViewError,
    CloudWatchEvent,
    CognitoUserPoolAuthorizer,
    ConflictError,
    CORSConfig,
    IAMAuthorizer,
    NotFoundError,
    Request,
    Response,
    TooManyRequestsError,
    UnauthorizedError,
)

from chalicelib.core import metrics
from chalicelib.core.auth import AuthConfig, key_space, principal, quota_owner
from chalicelib.core.credentials import CredentialSource
from chalicelib.core.errors import (
    ConfigError,
    QuotaBusy,
    QuotaExceeded,
    QuotaUnavailable,
    ServiceError,
    SigningUnavailable,
    StorageMisconfigured,
    StorageUnavailable,
    Unauthenticated,
    UploadConflict,
    UploadNotFound,
    UploadRejected,
)
from chalicelib.core.jsonbody import parse_json
from chalicelib.core.keys import issued_key, upload_id_in
from chalicelib.core.lazy import lazy
from chalicelib.core.logs import (
    RequestLog,
    log_format,
    log_level,
    log_quota_release_deferred,
    request_record,
)
from chalicelib.core.presign import Presigner
from chalicelib.core.rules import (
    POST_PARAMETERS,
    PUT_PARAMETERS,
    check_form_upload_allowed,
    expect_no_parameters,
    parse_request,
)
from chalicelib.core.s3 import SLOW_READ_TIMEOUT, make_client, make_s3_client
from chalicelib.core.settings import (
    DEFAULT_PREFIX,
    Settings,
    cors_allow_origin,
    malware_scan_on,
    quotas_on,
    verification_on,
)
from chalicelib.core.signing import backend_for
from chalicelib.verifier import SCAN_SOURCE, event_pattern

# The route families beyond GET /put-url are imported on first use: a cold /put-url
# never loads the multipart, Companion, status or verifier code (chalicelib/core/lazy.py).
if TYPE_CHECKING:
    from chalicelib.multipart import companion, service
    from chalicelib.multipart import uppy_sign as uppy
    from chalicelib.quotas import dynamodb, ledger
    from chalicelib.uploads import status
    from chalicelib.verifier import verify, webhook
else:
    companion = lazy("chalicelib.multipart.companion")
    service = lazy("chalicelib.multipart.service")
    uppy = lazy("chalicelib.multipart.uppy_sign")
    status = lazy("chalicelib.uploads.status")
    dynamodb = lazy("chalicelib.quotas.dynamodb")
    ledger = lazy("chalicelib.quotas.ledger")
    verify = lazy("chalicelib.verifier.verify")
    webhook = lazy("chalicelib.verifier.webhook")

app = Chalice(app_name="presigned-upload")
# The API takes and returns JSON only (files go straight to S3). Chalice's default list of
# binary media types would be matched against every response, three times; without it,
# API Gateway treats no payload as binary either.
app.api.binary_types = []

# Read at import: `chalice package` writes both into API Gateway (the OPTIONS preflight
# response, and the authorizer of every other method); Chalice applies the stage's
# variables before importing app.py. OPTIONS never has an authorizer: browsers send the
# preflight without credentials.
CORS = CORSConfig(allow_origin=cors_allow_origin(os.environ), max_age=600)
AUTH = AuthConfig.from_env(os.environ)
AUTHORIZER: Authorizer | None = {
    "none": None,
    "cognito": CognitoUserPoolAuthorizer("UserPool", provider_arns=list(AUTH.user_pool_arns)),
    "iam": IAMAuthorizer(),
}[AUTH.mode]
# Metrics are per function (`service`), so stages never mix: Lambda names it.
REQUEST_LOG = RequestLog(
    log_level(os.environ),
    os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "presigned-upload"),
    text=log_format(os.environ) == "text",
)
if not AUTH.required and "DEVSTACK_SETTINGS" not in os.environ:
    # `make run`'s launcher says it once, in its banner, for all its processes.
    print(
        "WARNING: AUTH_MODE=none: anyone who can reach this API can get upload URLs. "
        "Use it only for local development.",
        file=sys.stderr,
    )


@app.middleware("http")
def log_request(event: Request, get_response: Any) -> Response:
    """One JSON line per request, with its metrics (chalicelib/core/logs.py, metrics.py):
    never a URL, a header or a body."""
    started = time.perf_counter()
    counters = metrics.begin()
    response: Response = get_response(event)
    context = event.context or {}
    lambda_context = event.lambda_context
    REQUEST_LOG.write(
        request_record(
            context,
            event.method,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            principal(AUTH, context),
            response.body,
            _uuid_in_path(event, context),
            lambda_context and lambda_context.aws_request_id,
        ),
        counters,
    )
    return response


def _uuid_in_path(event: Request, context: dict[str, Any]) -> str | None:
    """The upload's UUID when the route names it (/uploads/{upload_id}...); the multipart
    routes' {upload_id} is S3's upload id instead, which is not logged."""
    if not str(context.get("resourcePath", "")).startswith("/uploads/"):
        return None
    return (event.uri_params or {}).get("upload_id")


class ConfigurationError(ChaliceViewError):
    """The deployment is misconfigured; the message names the setting to fix."""

    STATUS_CODE = 500


class ServiceUnavailableError(ChaliceViewError):
    """S3 could not be reached in time, or no valid credentials could sign; retry later."""

    STATUS_CODE = 503


class ServiceFailure(ChaliceViewError):
    """A domain error with no more specific mapping; its message says what failed."""

    STATUS_CODE = 500


# Domain error -> Chalice error (Chalice renders {"Code": <class name>, "Message": ...}).
# Looked up along the error's class hierarchy, so a new subclass inherits its parent's
# status; ServiceError itself is the catch-all, named, never an opaque 500.
HTTP_ERRORS: dict[type[ServiceError], type[ChaliceViewError]] = {
    ServiceError: ServiceFailure,
    ConfigError: ConfigurationError,
    StorageMisconfigured: ConfigurationError,
    UploadRejected: BadRequestError,
    Unauthenticated: UnauthorizedError,
    UploadNotFound: NotFoundError,
    UploadConflict: ConflictError,
    StorageUnavailable: ServiceUnavailableError,
    SigningUnavailable: ServiceUnavailableError,
    QuotaUnavailable: ServiceUnavailableError,
    QuotaBusy: ServiceUnavailableError,
    # The routes answer it with quota_exceeded(): its figures, and Retry-After.
    QuotaExceeded: TooManyRequestsError,
}


def http_error(exc: ServiceError) -> ChaliceViewError:
    """The HTTP error for a domain error: the nearest mapped class in its MRO."""
    for kind in type(exc).__mro__:
        if kind in HTTP_ERRORS:
            return HTTP_ERRORS[kind](str(exc))
    raise AssertionError("unreachable: ServiceError is mapped")  # pragma: no cover


class Services:
    """The services of one container, each built on its first use and then reused: a
    route family's modules are imported then, and boto3 only by the routes that call S3
    (issuing URLs needs no AWS SDK: chalicelib/core/sigv4.py). One S3 client, if any."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = functools.cache(lambda: make_s3_client(settings))
        self.completer = functools.cache(
            lambda: make_s3_client(settings, read_timeout=SLOW_READ_TIMEOUT)
        )
        self.presigner = Presigner(backend_for(settings, os.environ, self.client), settings)

    @functools.cached_property
    def status(self) -> status.UploadStatus:
        return status.UploadStatus(self.client, self.settings)

    @functools.cached_property
    def multipart(self) -> service.Multipart:
        return service.Multipart(self.client, self.settings, self.presigner, self.completer)

    @functools.cached_property
    def quotas(self) -> ledger.Ledger | None:
        """The quota ledger, on a stage with a quota (its DynamoDB client signs with the
        service's own SigV4: no boto3 on /put-url); None on the others."""
        if not self.settings.quotas_on:
            return None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        url = dynamodb.endpoint_for(region, self.settings.dynamodb_endpoint_url)
        db = dynamodb.DynamoDB(url, region, CredentialSource(os.environ))
        return ledger.Ledger(db, self.settings)

    @functools.cached_property
    def signer(self) -> uppy.RequestSigner:
        return uppy.RequestSigner(self.settings, self.presigner, self.multipart)


def quota_exceeded(exc: QuotaExceeded) -> Response:
    """429 with ``Retry-After``: which quota, its figures, and when a daily one resets."""
    body = {"Code": "QuotaExceeded", "Message": str(exc), "limit": exc.limit,
            "allowed": exc.allowed, "used": exc.used, "resets_at": exc.resets_at}  # fmt: skip
    return Response(body, {"Retry-After": str(exc.retry_after)}, 429)


@functools.cache
def services() -> Services:
    """The container's services, built once per container."""
    return Services(Settings.from_env(os.environ))


class Call:
    """What a view works with: the services, the caller's own key prefix, the request."""

    __slots__ = ("request", "space", "svc")

    def __init__(self, svc: Services, space: str, request: Request) -> None:
        self.svc = svc
        self.space = space
        self.request = request

    @property
    def settings(self) -> Settings:
        return self.svc.settings

    def reserve(self, upload_id: str, size: int, lifetime: int) -> None:
        """Count an upload against the caller's quotas before its URL goes out (a no-op
        on a stage without quotas); QuotaExceeded when it does not fit."""
        quotas = self.svc.quotas
        if quotas is not None:
            quotas.reserve(quota_owner(AUTH, self.request.context), upload_id, size, lifetime)

    def release(self, key: str, seconds: float) -> None:
        """Give back the quota an upload of the caller's (at ``key``) reserved: aborted;
        within ``seconds``, what is left of the route's budget."""
        quotas, upload_id = self.svc.quotas, upload_id_in(self.space, key)
        if quotas is None or upload_id is None:
            return
        try:
            quotas.release(upload_id, quota_owner(AUTH, self.request.context), seconds)
        except QuotaUnavailable as exc:
            # S3 has aborted: the answer says so. The reservation returns when it expires.
            log_quota_release_deferred(str(exc))

    @property
    def query(self) -> dict[str, list[str]]:
        """Every query parameter with all its values (repeats are refused by parsers)."""
        params = self.request.query_params
        return {name: params.getlist(name) for name in params} if params else {}

    @property
    def body(self) -> Any:
        """The JSON body, or None when there is none; a body too big, too deep or not
        JSON is a 400 (chalicelib/core/jsonbody.py)."""
        return parse_json(self.request.raw_body)


def route(path: str, method: str = "GET") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view for ``method path``, with the stage's CORS and authorizer.

    The view gets a :class:`Call` and the path's parameters. The caller's space is
    resolved before the view runs: with auth on and no caller, every route is a 401
    before any input is looked at. Domain errors become HTTP errors (:func:`http_error`).
    """

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handler(**path_params: str) -> Any:
            request = app.current_request
            assert request is not None  # Chalice sets it before calling a view
            try:
                svc = services()
                space = key_space(svc.settings.prefix, AUTH, request.context)
                return view(Call(svc, space, request), **path_params)
            except QuotaExceeded as exc:
                return quota_exceeded(exc)
            except ServiceError as exc:
                raise http_error(exc) from exc

        # A GET or DELETE has no body: Chalice would still match its Content-Type against
        # application/json on every request (and refuse others with a 415).
        content_types = ["application/json"] if method == "POST" else []
        app.route(path, methods=[method], cors=CORS, authorizer=AUTHORIZER,
                  content_types=content_types)(handler)  # fmt: skip
        return view

    return register


@route("/put-url")
def put_url(call: Call) -> dict[str, Any]:
    """A presigned PUT URL for a new upload: PUT the bytes with exactly `headers`."""
    request = parse_request(call.query, call.settings, PUT_PARAMETERS)
    ticket = call.svc.presigner.put_ticket(call.space, request)
    # With a size, the URL signs Content-Length: S3 stores no more than that.
    call.reserve(ticket.upload_id, request.size or call.settings.size_limit, ticket.expires_in)
    return ticket.to_response()


@route("/post-url")
def post_url(call: Call) -> dict[str, Any]:
    """A presigned POST policy (browser form) for one file of at most `max_bytes`."""
    check_form_upload_allowed(call.settings)
    request = parse_request(call.query, call.settings, POST_PARAMETERS)
    ticket = call.svc.presigner.post_ticket(call.space, request)
    call.reserve(ticket.upload_id, ticket.max_bytes, ticket.expires_in)
    return ticket.to_response()


@route("/quota")
def quota(call: Call) -> dict[str, Any]:
    """The caller's quotas: limits, what is used, and when the day's counts reset."""
    expect_no_parameters(call.query)
    quotas = call.svc.quotas
    if quotas is None:
        return {"enabled": False}
    return quotas.usage(quota_owner(AUTH, call.request.context))


@route("/uploads/{upload_id}")
def upload_status(call: Call, upload_id: str) -> dict[str, Any]:
    """`uploaded` with the object's size, type, ETag, time and checksum, or `pending`."""
    expect_no_parameters(call.query)
    return call.svc.status.status(call.space, upload_id)


@route("/uploads/{upload_id}/download-url")
def download_url(call: Call, upload_id: str) -> dict[str, Any]:
    """A short-lived GET URL for one of the caller's own stored uploads (else 404)."""
    expect_no_parameters(call.query)
    upload = call.svc.status.downloadable(call.space, upload_id)
    presigner = call.svc.presigner
    ticket = presigner.download_ticket(upload.upload_id, upload.key, upload.filename,
                                       upload.checksum)  # fmt: skip
    return ticket.to_response()


@route("/uploads/{upload_id}/claim", "POST")
def claim_upload(call: Call, upload_id: str) -> dict[str, Any]:
    """Keep one of the caller's uploads: unclaimed ones expire (UPLOAD_UNCLAIMED_DAYS)."""
    expect_no_parameters(call.query)
    return call.svc.status.claim(call.space, upload_id)


# Multipart uploads, in the routes and shapes of Uppy's Companion, so that
# `new AwsS3({endpoint: API_BASE})` works unmodified (chalicelib/multipart/companion.py).


@route("/s3/params")
def companion_params(call: Call) -> dict[str, Any]:
    """A POST policy for one file (Uppy uploads single files as a form POST)."""
    check_form_upload_allowed(call.settings)
    request = companion.parse_params_query(call.query, call.settings)
    ticket = call.svc.presigner.post_ticket(call.space, request, success_status="201")
    call.reserve(ticket.upload_id, ticket.max_bytes, ticket.expires_in)
    return companion.params_answer(ticket)


@route("/s3/multipart", "POST")
def multipart_create(call: Call) -> dict[str, Any]:
    """Start a multipart upload: ``{key, uploadId, UUID, ...}``."""
    expect_no_parameters(call.query)
    request, checksum = companion.parse_create(call.body, call.settings)
    created = call.svc.multipart.create(call.space, request, checksum, call.reserve)
    return companion.created_answer(created)


@route("/s3/multipart/{upload_id}")
def multipart_parts(call: Call, upload_id: str) -> list[dict[str, Any]]:
    """The parts S3 already holds: ``[{PartNumber, ETag, Size}]`` (to resume)."""
    upload = companion.parse_ref(call.space, upload_id, call.query)
    return companion.parts_answer(call.svc.multipart.list_parts(upload))


@route("/s3/multipart/{upload_id}", "DELETE")
def multipart_abort(call: Call, upload_id: str) -> dict[str, Any]:
    """Abort the upload and delete its parts; ``{}``, as Companion answers."""
    upload = companion.parse_ref(call.space, upload_id, call.query)
    call.release(upload.key, call.svc.multipart.abort(upload))
    return {}


@route("/s3/multipart/{upload_id}/batch")
def multipart_batch(call: Call, upload_id: str) -> dict[str, Any]:
    """Presigned URLs for several parts: ``{presignedUrls: {"1": url, ...}}``."""
    upload = companion.parse_ref(call.space, upload_id, call.query, ("partNumbers",))
    numbers = companion.parse_batch_numbers(call.query, call.settings)
    return companion.batch_answer(call.svc.multipart.batch_urls(upload, numbers))


@route("/s3/multipart/{upload_id}/complete", "POST")
def multipart_complete(call: Call, upload_id: str) -> dict[str, Any]:
    """Assemble the parts: ``{location, key, bucket, ...}``."""
    upload = companion.parse_ref(call.space, upload_id, call.query)
    parts = companion.parse_complete(call.body)
    return companion.completed_answer(call.svc.multipart.complete(call.space, upload, parts))


@route("/s3/sign", "POST")
def uppy_sign(call: Call) -> dict[str, Any]:
    """Uppy 6's signRequest: presign the S3 request Uppy is about to send (uppy_sign.py)."""
    expect_no_parameters(call.query)
    return call.svc.signer.sign(call.space, uppy.parse(call.body), call.reserve)


@route("/s3/multipart/{upload_id}/{part_number}")
def multipart_part(call: Call, upload_id: str, part_number: str) -> dict[str, Any]:
    """A presigned URL for one part: ``{url, expires, headers}``."""
    upload = companion.parse_ref(call.space, upload_id, call.query, companion.PART_PARAMETERS)
    number = companion.parse_part_number(part_number, call.settings)
    part = companion.parse_part_query(call.query, call.settings)
    ticket = call.svc.multipart.part_ticket(upload, number, part.md5, part.sha256, part.size)
    return companion.part_answer(ticket)


@functools.cache
def verifier() -> verify.Verifier:
    """The verifier, built once per container; its clients on first use."""
    svc = services()
    settings = svc.settings
    s3 = functools.cache(lambda: make_s3_client(settings))
    events = functools.cache(lambda: make_client("events"))
    notify = None
    if settings.webhook_url and settings.webhook_secret:
        secret = settings.webhook_secret
        key = functools.cache(lambda: webhook.read_secret(secret, make_client))
        notify = webhook.Webhook(settings.webhook_url, key).send
    settle = settle_verdict if settings.quotas_on else None
    service = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", verify.SERVICE)
    return verify.Verifier(s3, events, settings, AUTH.required, notify, settle, service)


def settle_verdict(verdict: verify.Verdict) -> None:
    """A verdict's quotas: a verified upload's reservation becomes its stored size, a
    rejected one's is given back."""
    quotas = services().quotas
    if quotas is None or verdict.upload_id is None:
        return
    if verdict.verified:
        quotas.landed(verdict.upload_id, verdict.size, verdict.etag)
    else:
        quotas.release(verdict.upload_id)


def settle_event(detail_type: str, key: str, detail: Any) -> str | None:
    """The quotas of an S3 event the verifier does not judge: an object created on a
    stage without verification (it counts as it is: its size, and its ETag, so that a
    replacement counts instead), or one deleted (its bytes leave the stored total). The
    upload's id, when the key is one this service issues."""
    svc = services()
    issued = issued_key(svc.settings.prefix, key, AUTH.required)
    if svc.quotas is None or issued is None:
        return None
    if detail_type == "Object Deleted":
        svc.quotas.deleted(issued[1])
        return issued[1]
    stored = detail.get("object") if isinstance(detail, dict) else None
    size = stored.get("size") if isinstance(stored, dict) else None
    etag = stored.get("etag") if isinstance(stored, dict) else None
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        svc.quotas.created(issued[1], size, etag if isinstance(etag, str) else "")
    return issued[1]


def object_of(detail: Any) -> tuple[str, str | None]:
    """The bucket and key of an "Object Created" event's detail; no key when the detail is
    not one (the rule's pattern makes that unlikely, but the handler must not crash)."""
    try:
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    except (KeyError, TypeError):
        return "", None
    if not isinstance(bucket, str) or not isinstance(key, str):
        return "", None
    return bucket, key


def ours(bucket: str, key: str) -> bool:
    """Whether an event's object is an upload's: in this bucket, under the upload prefix
    (the rule's pattern says so too, but the handler does not rely on it), and a key S3
    could hold: at most 1024 bytes of UTF-8 (a lone surrogate has none)."""
    settings = services().settings
    if bucket != settings.bucket or not key.startswith(settings.prefix):
        return False
    try:
        return len(key.encode()) <= 1024
    except UnicodeEncodeError:
        return False


# What lands is checked by a second function in the same app, on S3's "Object Created"
# events (chalicelib/verifier/verify.py). Registered only on stages with UPLOAD_VERIFY, so that
# `chalice package` deploys it only there (and only there does importing app.py load the
# verifier's module); the pattern is read at import, like CORS.
if verification_on(os.environ) or quotas_on(os.environ):
    VERIFY_PATTERN = event_pattern(
        os.environ.get("UPLOAD_BUCKET", ""), os.environ.get("UPLOAD_PREFIX", DEFAULT_PREFIX),
        deletions=quotas_on(os.environ), scans=malware_scan_on(os.environ),
    )  # fmt: skip

    @app.on_cw_event(VERIFY_PATTERN, name="verify_upload")
    def verify_upload(event: CloudWatchEvent) -> dict[str, Any]:
        """Judge one new object: tag it verified, or move it to quarantine; publish the
        verdict; settle the owner's quotas. With UPLOAD_MALWARE_SCAN, GuardDuty's scan
        results come here too. Without verification, only the quotas: what was created
        or deleted. Its Lambda handler is app.verify_upload."""
        if event.source == SCAN_SOURCE:
            scan = verify.ScanResult.parse(event.detail)
            if scan is None or not ours(scan.bucket, scan.key):
                verify.skipped_event(event.detail_type, "not a scan result of an upload here")
                return {"verdict": None}
            verdict = verifier().scanned(scan)
            return {"verdict": None if verdict is None else verdict.detail()}
        bucket, key = object_of(event.detail)
        if key is None or not ours(bucket, key):
            return {"verdict": None}
        if event.detail_type == "Object Created" and services().settings.verify:
            verdict = verifier().verify(bucket, key)
            return {"verdict": None if verdict is None else verdict.detail()}
        return {"verdict": None, "settled": settle_event(event.detail_type, key, event.detail)}


# SnapStart (deploy.snapstart in config.json): Lambda snapshots the function once this
# import is done and restores every new container from that snapshot. So what the first
# requests would load is loaded now: the route families, and botocore's credential chain,
# which signs there (a SnapStart function gets its role's credentials from a container
# endpoint, not from the environment). Nothing is built or fetched: no credentials,
# client or clock is in the snapshot, and nothing unique depends on `random` (whose
# state botocore's import brings, for its retry jitter): upload ids come from
# os.urandom (docs/deployment.md).
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    import botocore.session  # noqa: F401

    import chalicelib.multipart.uppy_sign
    import chalicelib.uploads.status  # noqa: F401
