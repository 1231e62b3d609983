"""Helpers shared by the test tiers: free ports, the local AWS environment, URL parsing."""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import os
import socket
import sys
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

from infra.stages import stage_environment

PROJECT = Path(__file__).resolve().parent.parent

# Dummy credentials: moto accepts anything, and they must never be real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REAL_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(url: str) -> dict[str, str]:
    """A URL's query parameters, each expected exactly once."""
    params = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in params.values()), params
    return {k: v[0] for k, v in params.items()}


def load_app(stage: str, **overrides: str) -> ModuleType:
    """A fresh import of app.py as Chalice imports it for ``stage``: with the stage's
    variables in the environment, since the CORS origin and the authorizer are read then."""
    spec = importlib.util.spec_from_file_location(f"app_{stage}", PROJECT / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    with mock.patch.dict(os.environ, {**stage_environment(stage), **overrides}):
        spec.loader.exec_module(module)
    return module


def unsigned_jwt(claims: dict[str, str]) -> str:
    """A JWT with these claims and no valid signature. `chalice local` (and Chalice's test
    client) decode the claims of a Cognito token without verifying it; API Gateway would
    refuse this one. An ID token carries ``cognito:username``; without it, the local
    gateway passes the request on with no claims at all."""

    def part(obj: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


def png(width: int = 1) -> bytes:
    """A real PNG (signature, IHDR, one IDAT, IEND): what a type sniffer calls image/png."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    header = width.to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"\x00" + b"\xff" * width)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))  # fmt: skip


def subscribe(endpoint: str, name: str) -> Callable[[], list[dict[str, Any]]]:
    """Subscribe as an app would, on the EventBridge at ``endpoint``: a rule on the default
    bus for this service's events, into a queue. Returns a function that takes the events
    received so far off the queue (waiting up to a second for the first)."""
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name="us-east-1")  # fmt: skip
    sqs = session.client("sqs", endpoint_url=endpoint)
    events = session.client("events", endpoint_url=endpoint)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["presigned-upload"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn["Attributes"]["QueueArn"]}])

    def received() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return received


# An HTTP answer as a proxy relays it: status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]


class ForwardingProxy(ThreadingHTTPServer):
    """A loopback proxy that forwards each request to ``upstream`` unchanged (Host
    included, so signatures hold), and makes a race between two calls deterministic:
    ``intercept(method, path, forward)`` decides each answer. It may call ``forward()``
    (the upstream's answer) and act before or after, answer itself, or return None to
    send nothing at all. Serves from a daemon thread until ``shutdown()``."""

    def __init__(
        self,
        upstream: str,
        intercept: Callable[[str, str, Callable[[], Answer]], Answer | None] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Forwarding)
        self.upstream = urlsplit(upstream).netloc
        self.intercept = intercept or (lambda method, path, forward: forward())
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forwarding(BaseHTTPRequestHandler):
    server: ForwardingProxy

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None

        def forward() -> Answer:
            conn = http.client.HTTPConnection(self.server.upstream, timeout=60)
            conn.request(self.command, self.path, body=body, headers=dict(self.headers))
            answer = conn.getresponse()
            return answer.status, answer.getheaders(), answer.read()

        answer = self.server.intercept(self.command, self.path, forward)
        if answer is None:
            return
        status, headers, data = answer
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass
