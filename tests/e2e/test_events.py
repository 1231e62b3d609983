"""`make run`'s event path, end to end: moto's S3 sends "Object Created" to EventBridge,
its rule to a queue, and the stack's worker runs app.py's verifier through Chalice's
local invocation. Nothing here calls the verifier: it runs because an object landed.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import boto3
import pytest
import requests

from tests.stack import Stack
from tests.support import png, subscribe


def upload(stack: Stack, data: bytes, content_type: str) -> dict[str, Any]:
    ticket: dict[str, Any] = requests.get(
        f"{stack.api}/put-url", params={"content_type": content_type}, timeout=10
    ).json()
    stored = requests.put(ticket["PUT_URL"], data=data, headers=ticket["headers"], timeout=10)
    assert stored.status_code == 200
    return ticket


def settled(
    stack: Stack, upload_id: str, seconds: float = 30, http: Any = requests
) -> dict[str, Any]:
    """The status once the verifier has answered (the page polls the same way): after the
    type check, and on a stage that scans, the malware scan. ``http`` is a requests
    session where the caller must send a token."""
    deadline = time.monotonic() + seconds
    while True:
        answer = http.get(f"{stack.api}/uploads/{upload_id}", timeout=10)
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        waiting = ("pending", "uploaded", "scanning")
        if status["status"] not in waiting or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.fixture
def subscriber(stack):
    """An app's subscription on the stack's EventBridge; a function that waits for the
    events about one upload."""
    received = subscribe(stack.s3, "e2e-app")

    def about(upload_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for _ in range(20):
            found += received()
            mine = [e for e in found if e["detail"]["UUID"] == upload_id]
            if mine:
                return mine
        return []

    return about


def test_a_real_png_turns_verified_and_the_app_hears_of_it(stack, subscriber):
    ticket = upload(stack, png(), "image/png")
    status = settled(stack, ticket["UUID"])
    assert (status["status"], status["key"]) == ("verified", ticket["key"])
    (event,) = subscriber(ticket["UUID"])
    assert (event["source"], event["detail-type"]) == ("presigned-upload", "Upload Verified")
    assert event["detail"]["key"] == ticket["key"]
    download = requests.get(f"{stack.api}/uploads/{ticket['UUID']}/download-url", timeout=10)
    assert requests.get(download.json()["url"], timeout=10).content == png()


def test_html_declared_as_png_turns_rejected_and_gets_no_download_url(stack, subscriber):
    ticket = upload(stack, b"<!doctype html><script>steal()</script>", "image/png")
    assert settled(stack, ticket["UUID"]) == {
        "UUID": ticket["UUID"], "status": "rejected",
        "reason": "markup: the content is an HTML or SVG or XML document but declared image/png",
    }  # fmt: skip
    download = requests.get(f"{stack.api}/uploads/{ticket['UUID']}/download-url", timeout=10)
    assert download.status_code == 404
    (event,) = subscriber(ticket["UUID"])
    assert event["detail-type"] == "Upload Rejected"


def test_a_claimed_upload_carries_its_tag(stack):
    ticket = upload(stack, png(), "image/png")
    assert settled(stack, ticket["UUID"])["status"] == "verified"
    claimed = requests.post(f"{stack.api}/uploads/{ticket['UUID']}/claim", timeout=10)
    assert claimed.json() == {"UUID": ticket["UUID"], "key": ticket["key"], "claimed": True}
    s3 = boto3.client("s3", endpoint_url=stack.s3, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    tags = s3.get_object_tagging(Bucket="uploads-local", Key=ticket["key"])["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "upload-status": "verified", "upload-claimed": "true", "upload-type": "image/png",
        "upload-etag": hashlib.md5(png(), usedforsecurity=False).hexdigest(),
        # The malware scan's own tag (the `local` stage scans; GuardDuty writes it).
        "GuardDutyMalwareScanStatus": "NO_THREATS_FOUND"}  # fmt: skip
