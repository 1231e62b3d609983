"""Who is calling: the authorization mode, and the caller's own key space.

API Gateway verifies the caller (a Cognito user pool token, or an IAM SigV4 signature)
before the Lambda runs, and hands the result over in the request context. This module
reads that context and turns the caller into a key prefix, ``<UPLOAD_PREFIX><principal>/``,
so no caller can name, list or download another caller's objects.

The mode is read when app.py is imported, because ``chalice package`` writes the
authorizer into API Gateway; the views then read the principal with the *same* mode.
"""

import ipaddress
import re
import string
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.core.errors import ConfigError, Unauthenticated

AUTH_MODES = ("none", "cognito", "iam")
# A principal becomes one key segment; AWS's identities stay well under this once escaped.
MAX_PRINCIPAL_LENGTH = 256
_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{2,45}")  # an IPv4 or IPv6 address's characters
_POOL_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:cognito-idp:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:"
    r"userpool/[a-z]{2}(?:-[a-z]+)+-\d+_[0-9A-Za-z]+"
)
# Kept as is in a key segment; everything else (including '_', the escape) is escaped.
_KEPT = frozenset(string.ascii_letters + string.digits + "-")
_HOW_TO_AUTHENTICATE = {
    "cognito": "send a Cognito user pool token in the Authorization header",
    "iam": "sign the request with AWS Signature Version 4 (IAM credentials)",
}


class AuthConfig(NamedTuple):
    """How callers are authorized. Build it with :meth:`from_env`."""

    mode: str
    user_pool_arns: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.mode != "none"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "AuthConfig":
        """Read AUTH_MODE (required: there is no silent default to an open API) and, for
        ``cognito``, COGNITO_USER_POOL_ARNS."""
        mode = environ.get("AUTH_MODE", "")
        if mode not in AUTH_MODES:
            raise ConfigError(
                f"AUTH_MODE={mode!r} is invalid; allowed: {', '.join(AUTH_MODES)} "
                "(set it in every stage of .chalice/config.json)"
            )
        if mode != "cognito":
            return cls(mode)
        raw = environ.get("COGNITO_USER_POOL_ARNS", "")
        arns = tuple(a.strip() for a in raw.split(",") if a.strip())
        bad = [a for a in arns if not _POOL_ARN.fullmatch(a)]
        if not arns or bad:
            raise ConfigError(
                f"COGNITO_USER_POOL_ARNS={raw!r} is invalid; allowed: a comma-separated list "
                "of user pool ARNs, like "
                "'arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123'"
            )
        return cls(mode, arns)


def principal(config: AuthConfig, context: Mapping[str, Any]) -> str | None:
    """The verified caller's id from an API Gateway request context, or None.

    ``cognito``: the user's ``sub`` claim (stable and never reassigned, unlike a username).
    ``iam``: the Cognito identity id when the caller holds identity pool credentials
    (they all share one role, so the role would lump every user together), else the
    SigV4 caller id (``AIDA...`` for a user, ``AROA...:<session name>`` for a role session).
    """
    if config.mode == "cognito":
        claims = (context.get("authorizer") or {}).get("claims") or {}
        value = claims.get("sub")
    elif config.mode == "iam":
        identity = context.get("identity") or {}
        value = identity.get("cognitoIdentityId") or identity.get("caller")
    else:
        return None
    return value if isinstance(value, str) and value else None


def principal_segment(value: str) -> str:
    """``value`` as one safe key segment; distinct principals give distinct segments.

    Letters, digits and '-' are kept; every other character becomes ``_XX`` per UTF-8
    byte (uppercase hex), '_' included, so the mapping is injective and the result can
    contain no '/', '.', '..' or other character that S3 or a shell treats specially.
    ``AROAEXAMPLE:alice@example.com`` gives ``AROAEXAMPLE_3Aalice_40example_2Ecom``.
    """
    return "".join(c if c in _KEPT else "".join(f"_{b:02X}" for b in c.encode()) for c in value)


def quota_owner(config: AuthConfig, context: Mapping[str, Any]) -> str:
    """Whom a quota counts against: the caller's key-space segment (call after
    :func:`key_space` has accepted the caller), or on an open stage its source IP as API
    Gateway reports it. An IPv6 caller is its /64 network: one subscriber's (RFC 6177),
    every address of which is its own to use."""
    if config.required:
        return principal_segment(principal(config, context) or "")
    address = (context.get("identity") or {}).get("sourceIp")
    try:
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ValueError(address)
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "ip-unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return f"ip-{parsed.ipv4_mapped}"
        return f"ip-{ipaddress.IPv6Network((parsed, 64), strict=False)}"
    return f"ip-{parsed}"


def key_space(prefix: str, config: AuthConfig, context: Mapping[str, Any]) -> str:
    """The key prefix this caller may use: ``prefix`` itself when auth is off, else
    ``<prefix><principal>/``. With auth on and no principal, refuse: never fall back to
    the shared prefix (a misconfigured gateway, or `chalice local`, which checks no token).
    """
    if not config.required:
        return prefix
    who = principal(config, context)
    try:
        segment = principal_segment(who) if who else ""
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") in a claim is no identity
        segment = ""
    if not segment or len(segment) > MAX_PRINCIPAL_LENGTH:
        raise Unauthenticated(
            f"no authenticated caller (AUTH_MODE={config.mode}); "
            f"{_HOW_TO_AUTHENTICATE[config.mode]}"
        )
    return f"{prefix}{segment}/"
