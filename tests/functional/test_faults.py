"""S3 down, slow or failing: issuing URLs goes on (it needs no network); the routes that
call S3 answer 503 with the reason, within a bounded time (chalicelib/s3.py: 1 s to
connect, 3 s to read, 2 attempts), never hanging for botocore's default minutes."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import free_port

UUID = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
KEY = f"put_folder/{UUID}.bin"
S3_ROUTES = [
    ("GET", f"/uploads/{UUID}", None),
    ("GET", f"/uploads/{UUID}/download-url", None),
    ("POST", "/s3/multipart", {"filename": "a.bin"}),
    ("GET", f"/s3/multipart/u1?key={KEY}", None),
    ("DELETE", f"/s3/multipart/u1?key={KEY}", None),
    ("POST", f"/s3/multipart/u1/complete?key={KEY}", {"parts": [{"PartNumber": 1, "ETag": "a"}]}),
]
SIGNING_ROUTES = ["/put-url", "/post-url", f"/s3/multipart/u1/1?key={KEY}",
                  f"/s3/multipart/u1/batch?key={KEY}&partNumbers=1,2"]  # fmt: skip


def call(api, method, path, body=None):
    payload = json.dumps(body).encode() if body is not None else b""
    started = time.monotonic()
    response = api.http.request(
        method, path, body=payload, headers={"Content-Type": "application/json"}
    )
    return response, time.monotonic() - started


@pytest.fixture
def s3_down(api, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # refused
    return api


@pytest.mark.parametrize("path", SIGNING_ROUTES)
def test_issuing_urls_needs_no_s3(s3_down, path):
    response, seconds = call(s3_down, "GET", path)
    assert response.status_code == 200, response.body
    assert seconds < 1


@pytest.mark.parametrize(("method", "path", "body"), S3_ROUTES)
def test_routes_that_call_an_unreachable_s3_answer_503_quickly(s3_down, method, path, body):
    response, seconds = call(s3_down, method, path, body)
    assert (response.status_code, response.json_body) == (
        503,
        {
            "Code": "ServiceUnavailableError",
            "Message": "S3 could not be reached (EndpointConnectionError); try again shortly",
        },
    )
    assert seconds < 5


@pytest.fixture
def silent_s3(api, monkeypatch) -> Iterator[object]:
    """A server that accepts connections and reads, but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.getsockname()[1]}")
    yield api
    stop.set()
    acceptor.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_s3_is_a_503_within_the_bound_while_urls_are_still_issued(silent_s3):
    response, seconds = call(silent_s3, "GET", f"/uploads/{UUID}")
    assert (response.status_code, response.json_body["Message"]) == (
        503,
        "S3 could not be reached (ReadTimeoutError); try again shortly",
    )
    assert 3 <= seconds < 10  # two attempts of a 3 s read timeout, and the backoff
    issued, seconds = call(silent_s3, "GET", "/put-url")
    assert (issued.status_code, seconds < 1) == (200, True)


class _Busy(BaseHTTPRequestHandler):
    """S3 throttling every request."""

    def _answer(self) -> None:
        body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def throttling_s3(api, monkeypatch) -> Iterator[object]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_address[1]}")
    yield api
    server.shutdown()


def test_a_throttling_s3_is_a_503_that_says_so(throttling_s3):
    response, seconds = call(throttling_s3, "POST", "/s3/multipart", {"filename": "a.bin"})
    assert (response.status_code, response.json_body["Message"]) == (
        503,
        "S3 is unavailable (SlowDown); try again shortly",
    )
    assert seconds < 5
    assert uuid.UUID(call(throttling_s3, "GET", "/put-url")[0].json_body["UUID"])
