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
