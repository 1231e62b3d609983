"""The browser upload page, served by `make run` next to the API (local stages only).

Files come from devstack/web/, and the browser client's modules from browser/ at
``/client/``; ``/config.json`` tells the page where the API is and which authorization
the stage uses, and ``/openapi.yaml`` is the API's OpenAPI description. The page
is on its own origin, so the API's and the bucket's CORS rules are exercised as a
deployed site would exercise them.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent / "web"
OPENAPI = ROOT.parent.parent / "openapi.yaml"
CLIENT = ROOT.parent.parent / "browser"


class _Handler(SimpleHTTPRequestHandler):
    def __init__(
        self, *args: Any, api_url: str, auth: str, verifying: bool, stage: str, **kwargs: Any
    ) -> None:
        config = {"api": api_url, "auth": auth, "verifying": verifying, "stage": stage}
        self._config = json.dumps(config).encode()
        super().__init__(*args, directory=str(ROOT), **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/config.json":
            self._send(self._config, "application/json")
        elif path == "/openapi.yaml":  # the API's contract, served beside the page
            self._send(OPENAPI.read_bytes(), "application/yaml")
        elif path.startswith("/client/") and path.count("/") == 2:
            module = CLIENT / path.removeprefix("/client/")
            if module.suffix == ".js" and module.is_file():
                self._send(module.read_bytes(), "text/javascript")
            else:
                self.send_error(404)
        else:
            super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the page's requests carry nothing worth a line each."""


def serve(
    host: str,
    port: int,
    api_url: str,
    auth: str = "none",
    verifying: bool = False,
    stage: str = "local",
) -> ThreadingHTTPServer:
    """Start serving the page in a daemon thread; ``shutdown()`` stops it. ``auth`` is
    the stage's AUTH_MODE: the page asks for a token unless it is ``none``. ``verifying``:
    the verifier runs, so the page waits for each upload's verdict. ``stage`` names the
    stage in the page's title and heading."""
    handler = partial(_Handler, api_url=api_url, auth=auth, verifying=verifying, stage=stage)
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
