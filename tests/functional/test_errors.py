"""Domain errors become HTTP errors along their class hierarchy: a new subclass of a
mapped error gets its parent's status, and none is ever an unnamed 500."""

from __future__ import annotations

import pytest

from chalicelib.core import errors
from tests.functional.conftest import app_module


class PartTooLarge(errors.UploadRejected):
    """A subclass the mapping has never heard of."""


class NewFailure(errors.ServiceError):
    """A direct subclass of the base with no mapping of its own."""


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.UploadRejected("no"), 400, "BadRequestError"),
        (errors.Unauthenticated("no"), 401, "UnauthorizedError"),
        (errors.UploadNotFound("no"), 404, "NotFoundError"),
        (errors.UploadConflict("no"), 409, "ConflictError"),
        (errors.ConfigError("no"), 500, "ConfigurationError"),
        (errors.StorageMisconfigured("no"), 500, "ConfigurationError"),
        (errors.StorageUnavailable("no"), 503, "ServiceUnavailableError"),
        (errors.SigningUnavailable("no"), 503, "ServiceUnavailableError"),
        (PartTooLarge("no"), 400, "BadRequestError"),
        (NewFailure("no"), 500, "ServiceFailure"),
    ],
)
def test_domain_errors_map_to_http_by_class(error, status, code):
    http = app_module.http_error(error)
    assert (http.STATUS_CODE, type(http).__name__, str(http)) == (status, code, "no")


def test_every_domain_error_has_a_mapping_of_its_own():
    defined = {
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServiceError)
    }
    assert defined == set(app_module.HTTP_ERRORS)
