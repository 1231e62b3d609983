"""`chalice local`, without the 40 ms stall on every keep-alive request.

    python -m devstack.chalice_local local --stage local --port 8000

Chalice's handler writes a response's status line, headers and body as separate small
writes. With Nagle's algorithm on, the last write waits for the ACK of the previous one,
which the client delays (up to 40 ms on Linux) for every request after a connection's
first. http.server's handlers turn Nagle off (TCP_NODELAY) when asked to; this asks,
before Chalice builds its handler, then runs Chalice's own CLI unchanged. It also lets
Chalice answer every HTTP method (405 JSON for one a route lacks), not http.server (501
HTML for any method Chalice does not list), and answers a malformed token on a Cognito
stage with 401, as API Gateway does, where Chalice's local authorizer would crash the
request's thread (the client saw the connection closed with no answer).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any


def main() -> None:
    BaseHTTPRequestHandler.disable_nagle_algorithm = True
    from chalice.cli import cli
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler

    # Settings the user exported before `make run` win over the stage's values in
    # .chalice/config.json, which Chalice would otherwise apply over them.
    overrides = json.loads(os.environ.get("DEVSTACK_SETTINGS") or "{}")
    if overrides:
        from_file = Config.environment_variables.fget  # type: ignore[attr-defined]
        Config.environment_variables = property(  # type: ignore[method-assign,assignment]
            lambda config: {**from_file(config), **overrides}
        )

    # Chalice answers a method a route lacks with 405 JSON, as for DELETE on a GET route;
    # http.server answers any method Chalice did not list (TRACE, QUERY, ...) itself, with
    # a 501 HTML page. Let Chalice answer every method.
    def any_method(handler: ChaliceRequestHandler, name: str) -> Any:
        if name.startswith("do_"):
            return functools.partial(ChaliceRequestHandler._generic_handle, handler)
        raise AttributeError(name)

    ChaliceRequestHandler.__getattr__ = any_method
    refuse_malformed_tokens()

    args = sys.argv[1:]
    # Chalice's reloader restarts its worker with sys.argv, so make that this module again.
    sys.argv = [sys.executable, "-m", "devstack.chalice_local", *args]
    cli.main(args=args, prog_name="chalice", obj={})


def refuse_malformed_tokens() -> None:
    """A token whose payload is not a base64url JSON object is a 401, as API Gateway's
    Cognito authorizer answers it, not an exception in Chalice's local authorizer."""
    from chalice.local import LocalGatewayAuthorizer, NotAuthorizedError

    decode = LocalGatewayAuthorizer._decode_jwt_payload

    def decode_or_refuse(self: LocalGatewayAuthorizer, jwt: str) -> dict[str, Any]:
        try:
            claims = decode(self, jwt)
        except (IndexError, ValueError):  # no payload segment, not base64, not JSON
            claims = None
        if not isinstance(claims, dict):
            raise NotAuthorizedError(
                {"x-amzn-ErrorType": "UnauthorizedException"}, b'{"message":"Unauthorized"}'
            )
        return claims

    LocalGatewayAuthorizer._decode_jwt_payload = decode_or_refuse  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
