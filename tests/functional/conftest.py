"""Route tests: Chalice's test client in-process, against moto's S3 server over real HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import requests
from chalice.test import Client

from devstack import scanner
from devstack.moto_server import Server
from tests.support import LOCAL_AWS_ENV, REAL_AWS_VARS, load_app

BUCKET = "uploads-local"  # the `local` stage's UPLOAD_BUCKET
# app.py as the `local` stage (AUTH_MODE=none) imports it.
app_module = load_app("local")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with Server() as url:
        yield url


@pytest.fixture
def s3(monkeypatch, s3_endpoint):
    """A clean local S3 with the stage's bucket, and the app pointed at it."""
    for name in REAL_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    # The verifier's EventBridge, and the webhook key's SSM and Secrets Manager: moto too.
    for service in ("EVENTBRIDGE", "SQS", "SSM", "SECRETS_MANAGER"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", s3_endpoint)
    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=5).raise_for_status()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    # Services are cached per container; each test starts a fresh "container".
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()
    yield client
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()


@pytest.fixture
def api(s3) -> Iterator[Client]:
    with Client(app_module.app, stage_name="local") as client:
        yield client


def s3_event(api: Client, key: str, bucket: str = BUCKET) -> dict[str, Any]:
    """S3's "Object Created" event for ``key``, as EventBridge hands it to the verifier."""
    return api.events.generate_cw_event(
        source="aws.s3", detail_type="Object Created", resources=[f"arn:aws:s3:::{bucket}"],
        detail={"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 0},
                "reason": "PutObject"},
    )  # fmt: skip


def put(api: Client, data: bytes, **params: str) -> dict[str, Any]:
    """GET /put-url with ``params``, then PUT ``data`` to the URL; the ticket."""
    body: dict[str, Any] = api.http.get("/put-url?" + urlencode(params)).json_body
    response = requests.put(body["PUT_URL"], data=data, headers=body["headers"], timeout=10)
    assert response.status_code == 200, response.text
    return body


def scan_event(api: Client, key: str, etag: str, status: str = "NO_THREATS_FOUND",
               threats: tuple[str, ...] = (), bucket: str = BUCKET) -> dict[str, Any]:  # fmt: skip
    """GuardDuty's scan result for ``key`` (the bytes with ``etag``), as EventBridge hands
    it to the verifier: the event devstack/scanner.py sends, in GuardDuty's shape."""
    entry = scanner.scan_event(bucket, key, etag, status, list(threats))
    return api.events.generate_cw_event(
        source=entry["Source"], detail_type=entry["DetailType"], resources=entry["Resources"],
        detail=json.loads(entry["Detail"]),
    )  # fmt: skip


def verify(api: Client, key: str, scan: str | None = "NO_THREATS_FOUND") -> dict[str, Any]:
    """Run the verifier on ``key`` as the `local` stage's events do, through Chalice's
    local invocation: S3's "Object Created", then (unless ``scan`` is None) GuardDuty's
    result ``scan`` for the bytes stored now (tagged first, as by GuardDuty). The answer
    of the one that decided, else the last one's."""
    answer: dict[str, Any] = api.lambda_.invoke("verify_upload", s3_event(api, key)).payload
    if answer["verdict"] is not None or scan is None:
        return answer
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    try:
        etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    except s3.exceptions.ClientError:
        return answer  # gone: there is nothing for GuardDuty to scan
    scanner.tag(s3, BUCKET, key, scan)  # GuardDuty tags the object, then publishes
    scanned: dict[str, Any] = api.lambda_.invoke(
        "verify_upload", scan_event(api, key, etag, scan)).payload  # fmt: skip
    return scanned
