"""HTTP routes only: parse the request, call one service, return a dict.

Services are built lazily, once per container (``services()``), and domain errors are
mapped to HTTP statuses in one place (``_http_errors``). Three settings are read at
import: the CORS origin and the authorizer (``AUTH_MODE``), because ``chalice package``
writes them into API Gateway, and ``LOG_LEVEL``, for the request log's middleware.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from chalice.app import (
    Authorizer,
    BadRequestError,
    Chalice,
    ChaliceViewError,
    CognitoUserPoolAuthorizer,
    ConflictError,
    CORSConfig,
    IAMAuthorizer,
    NotFoundError,
    Request,
    Response,
    UnauthorizedError,
)

from chalicelib.auth import AuthConfig, key_space, principal
from chalicelib.errors import (
    ConfigError,
    ServiceError,
    SigningUnavailable,
    StorageUnavailable,
    Unauthenticated,
    UploadConflict,
    UploadNotFound,
    UploadRejected,
)
from chalicelib.logs import RequestLog, log_level, request_record
from chalicelib.multipart import Multipart, parse_create, parse_params_query
from chalicelib.presign import Presigner
from chalicelib.rules import (
    POST_PARAMETERS,
    PUT_PARAMETERS,
    check_form_upload_allowed,
    expect_no_parameters,
    parse_request,
)
from chalicelib.s3 import SLOW_READ_TIMEOUT, make_s3_client
from chalicelib.settings import Settings, cors_allow_origin
from chalicelib.signing import backend_for
from chalicelib.status import UploadStatus

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
REQUEST_LOG = RequestLog(log_level(os.environ))
if not AUTH.required:
    print(
        "WARNING: AUTH_MODE=none: anyone who can reach this API can get upload URLs. "
        "Use it only for local development.",
        file=sys.stderr,
    )


@app.middleware("http")
def log_request(event: Request, get_response: Any) -> Response:
    """One JSON line per request (chalicelib/logs.py): never a URL, a header or a body."""
    started = time.perf_counter()
    response: Response = get_response(event)
    context = event.context or {}
    REQUEST_LOG.write(
        request_record(
            context,
            event.method,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            principal(AUTH, context),
            response.body,
            _uuid_in_path(event, context),
        )
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


# Domain error -> Chalice error (Chalice renders {"Code": <class name>, "Message": ...}).
_HTTP_ERRORS: dict[type[ServiceError], type[ChaliceViewError]] = {
    ConfigError: ConfigurationError,
    UploadRejected: BadRequestError,
    Unauthenticated: UnauthorizedError,
    UploadNotFound: NotFoundError,
    UploadConflict: ConflictError,
    StorageUnavailable: ServiceUnavailableError,
    SigningUnavailable: ServiceUnavailableError,
}


class _HttpErrors:
    """``with _http_errors():`` raises a domain error as its HTTP error. A class rather than
    a @contextmanager: it runs on every request, and costs a tenth as much."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if isinstance(exc, ServiceError):
            raise _HTTP_ERRORS[type(exc)](str(exc)) from exc


_http_errors = _HttpErrors


@dataclass(frozen=True)
class Services:
    settings: Settings
    presigner: Presigner
    status: UploadStatus
    multipart: Multipart


@functools.cache
def services() -> Services:
    """The services, built once per container and then reused (one S3 client, if any)."""
    settings = Settings.from_env(os.environ)
    # Issuing URLs needs no AWS SDK (chalicelib/sigv4.py); the routes that call S3 load
    # boto3 and build their client on first use, so a cold start pays for it only then.
    client = functools.cache(lambda: make_s3_client(settings))
    completer = functools.cache(lambda: make_s3_client(settings, read_timeout=SLOW_READ_TIMEOUT))
    presigner = Presigner(backend_for(settings, os.environ, client), settings)
    return Services(
        settings,
        presigner,
        UploadStatus(client, settings),
        Multipart(client, settings, presigner, completer),
    )


def _query() -> dict[str, list[str]]:
    params = app.current_request.query_params if app.current_request else None
    return {name: params.getlist(name) for name in params} if params else {}


def _json_body() -> Any:
    """The request's JSON body, or None when it has none (Chalice answers malformed JSON
    with a 400 itself)."""
    return app.current_request.json_body if app.current_request else None


def _space(settings: Settings) -> str:
    """The caller's own key prefix; Unauthenticated (401) if auth is on and no one is."""
    context = app.current_request.context if app.current_request else {}
    return key_space(settings.prefix, AUTH, context)


@app.route("/put-url", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def put_url() -> dict[str, Any]:
    """A presigned PUT URL for a new upload: PUT the bytes with exactly `headers`."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        request = parse_request(_query(), svc.settings, PUT_PARAMETERS)
        return svc.presigner.put_ticket(space, request).to_response()


@app.route("/post-url", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def post_url() -> dict[str, Any]:
    """A presigned POST policy (browser form) for one file of at most `max_bytes`."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        check_form_upload_allowed(svc.settings)
        request = parse_request(_query(), svc.settings, POST_PARAMETERS)
        return svc.presigner.post_ticket(space, request).to_response()


@app.route("/uploads/{upload_id}", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def upload_status(upload_id: str) -> dict[str, Any]:
    """`uploaded` with the object's size, type, ETag and time, or `pending`."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        expect_no_parameters(_query())
        return svc.status.status(space, upload_id)


@app.route("/uploads/{upload_id}/download-url", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def download_url(upload_id: str) -> dict[str, Any]:
    """A short-lived GET URL for one of the caller's own stored uploads (else 404)."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        expect_no_parameters(_query())
        upload = svc.status.stored(space, upload_id)
        return svc.presigner.download_ticket(
            upload.upload_id, upload.key, upload.filename
        ).to_response()


# Multipart uploads, in the routes and shapes of Uppy's Companion, so that
# `new AwsS3({companionEndpoint: API_BASE})` works unmodified (see chalicelib/multipart.py).


@app.route("/s3/params", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def companion_params() -> dict[str, Any]:
    """A POST policy for one file (Uppy uploads single files as a form POST)."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        check_form_upload_allowed(svc.settings)
        request = parse_params_query(_query(), svc.settings)
        return svc.presigner.post_ticket(space, request).to_companion_response()


@app.route("/s3/multipart", methods=["POST"], cors=CORS, authorizer=AUTHORIZER)
def multipart_create() -> dict[str, Any]:
    """Start a multipart upload: ``{key, uploadId, UUID, ...}``."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        expect_no_parameters(_query())
        return svc.multipart.create(space, parse_create(_json_body(), svc.settings))


@app.route("/s3/multipart/{upload_id}", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def multipart_parts(upload_id: str) -> list[dict[str, Any]]:
    """The parts S3 already holds: ``[{PartNumber, ETag, Size}]`` (to resume)."""
    with _http_errors():
        svc = services()
        return svc.multipart.list_parts(_space(svc.settings), upload_id, _query())


@app.route("/s3/multipart/{upload_id}", methods=["DELETE"], cors=CORS, authorizer=AUTHORIZER)
def multipart_abort(upload_id: str) -> dict[str, Any]:
    """Abort the upload and delete its parts."""
    with _http_errors():
        svc = services()
        return svc.multipart.abort(_space(svc.settings), upload_id, _query())


@app.route("/s3/multipart/{upload_id}/batch", methods=["GET"], cors=CORS, authorizer=AUTHORIZER)
def multipart_batch(upload_id: str) -> dict[str, Any]:
    """Presigned URLs for several parts: ``{presignedUrls: {"1": url, ...}}``."""
    with _http_errors():
        svc = services()
        return svc.multipart.batch_urls(_space(svc.settings), upload_id, _query())


@app.route("/s3/multipart/{upload_id}/complete", methods=["POST"], cors=CORS, authorizer=AUTHORIZER)
def multipart_complete(upload_id: str) -> dict[str, Any]:
    """Assemble the parts: ``{location, key, bucket, ...}``."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        return svc.multipart.complete(space, upload_id, _query(), _json_body())


@app.route(
    "/s3/multipart/{upload_id}/{part_number}", methods=["GET"], cors=CORS, authorizer=AUTHORIZER
)
def multipart_part(upload_id: str, part_number: str) -> dict[str, Any]:
    """A presigned URL for one part: ``{url, expires, headers}``."""
    with _http_errors():
        svc = services()
        space = _space(svc.settings)
        return svc.multipart.part_url(space, upload_id, part_number, _query())
