"""The domain's exceptions. app.py maps each one to an HTTP status in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service reports to its caller with a message."""


class ConfigError(ServiceError):
    """A setting is missing or invalid; the message names the variable and what is allowed."""


class StorageMisconfigured(ConfigError):
    """S3 refused the service's own request (no such bucket, access denied, bad
    credentials, wrong region): the deployment must be fixed, not the request."""


class UploadRejected(ServiceError):
    """The request breaks an upload rule; the message says what is allowed."""


class StorageUnavailable(ServiceError):
    """S3 did not answer in time, or could not be reached; the caller may retry."""


class Unauthenticated(ServiceError):
    """Authorization is on but the request carries no verified caller."""


class UploadNotFound(ServiceError):
    """No upload with this id is stored in the caller's key space."""


class UploadConflict(ServiceError):
    """The upload would replace an existing object, and overwriting is off."""


class SigningUnavailable(ServiceError):
    """No valid AWS credentials to sign with right now; the caller may retry."""


class QuotaExceeded(ServiceError):
    """Issuing the URL would take the caller past one of its quotas (chalicelib/quotas/).

    ``limit`` names it (``files_per_day``, ``bytes_per_day``, ``stored_bytes`` or
    ``uploads_in_flight``); ``allowed`` and ``used`` are its figures; ``resets_at`` is when
    a daily count starts again (None for the others); ``retry_after`` is the seconds to
    wait before a retry can succeed, at the least."""

    def __init__(self, message: str, limit: str, allowed: int, used: int,
                 resets_at: str | None, retry_after: int) -> None:  # fmt: skip
        super().__init__(message)
        self.limit = limit
        self.allowed = allowed
        self.used = used
        self.resets_at = resets_at
        self.retry_after = retry_after


class QuotaUnavailable(ServiceError):
    """The quota table did not answer in time, or throttled: no URL is issued uncounted
    (unless UPLOAD_QUOTA_FAIL_OPEN); the caller may retry."""


class QuotaBusy(QuotaUnavailable):
    """The caller's own parallel requests kept cancelling this one's transaction: a 503
    like QuotaUnavailable, but never passed uncounted by UPLOAD_QUOTA_FAIL_OPEN (a caller
    could otherwise choose to be uncounted by sending bursts)."""
