"""moto's server, with DynamoDB's requests handled one at a time, as `make run` and the
tests start it: ``python -m devstack.moto_server [-H HOST] [-p PORT]``.

DynamoDB applies each write, and each ``TransactWriteItems``, atomically. moto's threaded
server does not: it checks a transaction's conditions and writes its items without a lock,
and when a transaction is cancelled it restores a copy of the whole table, undoing what
other requests wrote in between. Quotas rely on that atomicity (parallel requests at the
limit must never be granted more than the limit), so DynamoDB's requests are serialised
here. S3's and every other service's stay parallel.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server, run_simple

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialDynamoDB:
    """WSGI middleware: one DynamoDB request at a time (its JSON API names itself in
    ``X-Amz-Target``); the others pass straight through."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # The whole answer is produced under the lock, not only its first part.
            return list(self._app(environ, start_response))


def application() -> SerialDynamoDB:
    return SerialDynamoDB(DomainDispatcherApplication(create_backend_app))


class Server:
    """The server in a thread of this process, for tests: ``with Server() as url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, application(), threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server does
    run_simple(args.host, args.port, application(), threaded=True,
               request_handler=MotoRequestHandler)  # fmt: skip


if __name__ == "__main__":
    main()
