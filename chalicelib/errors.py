"""The domain's exceptions. app.py maps each one to an HTTP status in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service reports to its caller with a message."""


class ConfigError(ServiceError):
    """A setting is missing or invalid; the message names the variable and what is allowed."""
