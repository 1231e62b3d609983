"""S3 down, slow or failing: issuing URLs goes on (it needs no network); the routes that
call S3 answer 503 with the reason. The bound on how long that takes is proven by what
S3 receives (how many attempts) and by the configured timeouts (tests/unit/test_s3.py),
never by a stopwatch: these machines are shared and noisy."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests

from chalicelib.core.s3 import ATTEMPTS
from tests.support import Answer, ForwardingProxy, free_port

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
    return api.http.request(
        method, path, body=payload, headers={"Content-Type": "application/json"}
    )


@pytest.fixture
def s3_down(api, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # refused
    return api


@pytest.mark.parametrize("path", SIGNING_ROUTES)
def test_issuing_urls_needs_no_s3(s3_down, path):
    response = call(s3_down, "GET", path)
    assert response.status_code == 200, response.body


@pytest.mark.parametrize(("method", "path", "body"), S3_ROUTES)
def test_routes_that_call_an_unreachable_s3_answer_503(s3_down, method, path, body):
    response = call(s3_down, method, path, body)
    assert (response.status_code, response.json_body) == (
        503,
        {
            "Code": "ServiceUnavailableError",
            "Message": "S3 could not be reached (EndpointConnectionError); try again shortly",
        },
    )


class SilentS3:
    """A server that accepts connections and reads, but never answers: each connection
    is one attempt of the client's."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.held.append(self.server.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join()
        for conn in self.held:
            conn.close()
        self.server.close()


@pytest.fixture
def silent_s3(api, monkeypatch) -> Iterator[SilentS3]:
    silent = SilentS3()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", silent.url)
    yield silent
    silent.close()


# Waits out the real read timeouts of every attempt: `make unit` leaves it to `make test`.
@pytest.mark.slow
def test_a_silent_s3_gets_the_configured_attempts_then_a_503_while_urls_are_still_issued(
    api, silent_s3
):
    response = call(api, "GET", f"/uploads/{UUID}")
    assert (response.status_code, response.json_body["Message"]) == (
        503,
        "S3 could not be reached (ReadTimeoutError); try again shortly",
    )
    assert len(silent_s3.held) == ATTEMPTS
    assert call(api, "GET", "/put-url").status_code == 200
    assert len(silent_s3.held) == ATTEMPTS  # issuing a URL sent S3 nothing


class _Busy(BaseHTTPRequestHandler):
    """S3 throttling every request, counting them."""

    received: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.received.append(f"{self.command} {self.path}")
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
def throttling_s3(api, monkeypatch) -> Iterator[list[str]]:
    class Busy(_Busy):
        received: ClassVar[list[str]] = []  # this test's own

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_address[1]}")
    yield Busy.received
    server.shutdown()


def test_a_throttling_s3_gets_the_configured_attempts_and_a_503_that_says_so(api, throttling_s3):
    response = call(api, "POST", "/s3/multipart", {"filename": "a.bin"})
    assert (response.status_code, response.json_body["Message"]) == (
        503,
        "S3 is unavailable (SlowDown); try again shortly",
    )
    assert len(throttling_s3) == ATTEMPTS
    (request,) = set(throttling_s3)  # the same CreateMultipartUpload, attempted again
    assert (
        request.startswith("POST /uploads-local/put_folder/"),
        request.endswith("?uploads"),
    ) == (True, True)
    assert uuid.UUID(call(api, "GET", "/put-url").json_body["UUID"])
    assert len(throttling_s3) == ATTEMPTS


def lost_race(code: str) -> Callable[[str, str, Callable[[], Answer]], Answer]:
    """Forward to S3, but answer a CompleteMultipartUpload as S3 does when another
    conditional write of the same key, or an abort, runs at that moment."""

    def intercept(method: str, path: str, forward: Callable[[], Answer]) -> Answer:
        if method == "POST" and "uploadId=" in path:
            body = (f"<Error><Code>{code}</Code><Message>A conflicting operation occurred."
                    "</Message></Error>").encode()  # fmt: skip
            return 409, [("Content-Type", "application/xml")], body
        return forward()

    return intercept


@pytest.mark.parametrize("code", ["ConditionalRequestConflict", "OperationAborted"])
def test_a_completion_that_races_another_is_a_409_that_says_to_try_again(
    api, s3_endpoint, monkeypatch, code
):
    # GIVEN S3 behind a proxy that answers the completion as a lost race
    proxy = ForwardingProxy(s3_endpoint, lost_race(code))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    upload = call(api, "POST", "/s3/multipart", {"filename": "a.bin"}).json_body
    part = call(api, "GET", f"/s3/multipart/{upload['uploadId']}/1?key={upload['key']}")
    etag = requests.put(part.json_body["url"], data=b"one part", timeout=10).headers["ETag"]
    # WHEN it is completed
    done = call(api, "POST", f"/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}",
                {"parts": [{"PartNumber": 1, "ETag": etag}]})  # fmt: skip
    proxy.shutdown()
    # THEN the answer is a conflict to retry, not a misconfiguration
    assert (done.status_code, done.json_body) == (409, {"Code": "ConflictError", "Message": (
        f"another request completed or aborted an upload of {upload['key']!r} at the same "
        f"time (S3: {code}); allowed: try again: GET /uploads/{{uuid}} says whether it is "
        "stored, GET /s3/multipart/{uploadId} whether this upload still is")})  # fmt: skip
