"""HTTP routes only: parse the request, call one service, return a dict.

Services are built lazily, once per container (see ``presigner``), and domain errors are
mapped to HTTP statuses in one place (``_http_errors``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalice.app import Chalice, ChaliceViewError, CORSConfig

from chalicelib.errors import ConfigError, ServiceError
from chalicelib.presign import Presigner
from chalicelib.s3 import make_s3_client
from chalicelib.settings import Settings, cors_allow_origin

app = Chalice(app_name="presigned-upload")

# The one setting read at import: `chalice package` writes it into API Gateway's OPTIONS
# (preflight) response, and Chalice applies the stage's variables before importing app.py.
CORS = CORSConfig(
    allow_origin=cors_allow_origin(os.environ),
    max_age=600,
)


class ConfigurationError(ChaliceViewError):
    """The deployment is misconfigured; the message names the setting to fix."""

    STATUS_CODE = 500


# Domain error -> Chalice error (Chalice renders {"Code": <class name>, "Message": ...}).
_HTTP_ERRORS: dict[type[ServiceError], type[ChaliceViewError]] = {
    ConfigError: ConfigurationError,
}


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        raise _HTTP_ERRORS[type(exc)](str(exc)) from exc


@functools.cache
def presigner() -> Presigner:
    """The presign service, with its S3 client built once per container and then reused."""
    settings = Settings.from_env(os.environ)
    return Presigner(make_s3_client(settings), settings)


@app.route("/put-url", methods=["GET"], cors=CORS)
def put_url() -> dict[str, Any]:
    """A presigned PUT URL for a new upload: PUT the file's bytes to ``PUT_URL``."""
    with _http_errors():
        return presigner().put_ticket().to_response()
