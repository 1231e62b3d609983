"""The AWS credentials that sign URLs, found without loading the AWS SDK where possible.

In Lambda the function's role credentials are in the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, and the session token, which must be signed into every URL, or S3
refuses it). Anywhere else (a profile, SSO, an instance role) botocore's credential chain
finds them; it is imported only then, and its refreshable credentials are asked for a
fresh copy on every signature, so they are renewed before they expire.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.errors import SigningUnavailable
from chalicelib.core.sigv4 import Credentials


class CredentialSource:
    """Current credentials on demand: from the environment, else from botocore's chain."""

    def __init__(
        self,
        environ: Mapping[str, str],
        chain: Callable[[], Any] | None = None,
    ) -> None:
        """``chain`` returns botocore credentials (it defaults to a botocore session's);
        it is called at most once, the first time the environment has none."""
        self._static = _from_environment(environ)
        self._chain = chain or _botocore_chain
        self._resolved: Any = None

    def get(self) -> Credentials:
        if self._static is not None:
            return self._static
        if self._resolved is None:
            self._resolved = self._chain()
            if self._resolved is None:
                raise SigningUnavailable(
                    "no AWS credentials found to sign with; set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or configure a profile or role"
                )
        # Refreshable credentials renew themselves here when they are close to expiry.
        frozen = self._resolved.get_frozen_credentials()
        expiry = getattr(self._resolved, "_expiry_time", None)
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token, _utc(expiry))


def remaining_seconds(credentials: Credentials, now: datetime) -> int | None:
    """Whole seconds the credentials stay valid, or None when that is not known."""
    if credentials.expires_at is None:
        return None
    return int((credentials.expires_at - now).total_seconds())


def _from_environment(environ: Mapping[str, str]) -> Credentials | None:
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not (access_key and secret_key):
        return None
    # The legacy name is still honoured by botocore's environment provider.
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    expiry = environ.get("AWS_CREDENTIAL_EXPIRATION", "")
    return Credentials(access_key, secret_key, token, _parse_expiry(expiry) if expiry else None)


def _parse_expiry(value: str) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _botocore_chain() -> Any:
    import botocore.session

    return botocore.session.get_session().get_credentials()
