"""HTTP routes only: parse the request, call one service, return a dict.

Services are built lazily, once per container (``services()``), and domain errors are
mapped to HTTP statuses in one place (``_http_errors``). Two settings are read at import,
because ``chalice package`` writes them into API Gateway: the CORS origin and the
authorizer (``AUTH_MODE``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalice.app import (
    Authorizer,
    BadRequestError,
    Chalice,
    ChaliceViewError,
    CognitoUserPoolAuthorizer,
    CORSConfig,
    IAMAuthorizer,
    NotFoundError,
    UnauthorizedError,
)

from chalicelib.auth import AuthConfig, key_space
from chalicelib.errors import (
    ConfigError,
    ServiceError,
    StorageUnavailable,
    Unauthenticated,
    UploadNotFound,
    UploadRejected,
)
from chalicelib.presign import Presigner
from chalicelib.rules import (
    POST_PARAMETERS,
    PUT_PARAMETERS,
    check_form_upload_allowed,
    expect_no_parameters,
    parse_request,
)
from chalicelib.s3 import make_s3_client
from chalicelib.settings import Settings, cors_allow_origin
from chalicelib.status import UploadStatus

app = Chalice(app_name="presigned-upload")

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
if not AUTH.required:
    print(
        "WARNING: AUTH_MODE=none: anyone who can reach this API can get upload URLs. "
        "Use it only for local development.",
        file=sys.stderr,
    )


class ConfigurationError(ChaliceViewError):
    """The deployment is misconfigured; the message names the setting to fix."""

    STATUS_CODE = 500


class ServiceUnavailableError(ChaliceViewError):
    """S3 could not be reached in time; the caller may retry."""

    STATUS_CODE = 503


# Domain error -> Chalice error (Chalice renders {"Code": <class name>, "Message": ...}).
_HTTP_ERRORS: dict[type[ServiceError], type[ChaliceViewError]] = {
    ConfigError: ConfigurationError,
    UploadRejected: BadRequestError,
    Unauthenticated: UnauthorizedError,
    UploadNotFound: NotFoundError,
    StorageUnavailable: ServiceUnavailableError,
}


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        raise _HTTP_ERRORS[type(exc)](str(exc)) from exc


@dataclass(frozen=True)
class Services:
    settings: Settings
    presigner: Presigner
    status: UploadStatus


@functools.cache
def services() -> Services:
    """The services, sharing one S3 client built once per container and then reused."""
    settings = Settings.from_env(os.environ)
    client = make_s3_client(settings)
    return Services(settings, Presigner(client, settings), UploadStatus(client, settings))


def _query() -> dict[str, list[str]]:
    params = app.current_request.query_params if app.current_request else None
    return {name: params.getlist(name) for name in params} if params else {}


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
