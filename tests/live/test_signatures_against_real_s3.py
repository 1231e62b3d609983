"""Opt-in tier: the URLs we issue, judged by an S3 that verifies signatures.

moto accepts any signature, so this tier runs only against a strict S3: real AWS, or a
local S3 with signature validation (LocalStack with S3_SKIP_SIGNATURE_VALIDATION=0).

    make test-live LIVE_S3_BUCKET=my-test-bucket                 # real AWS, ambient credentials
    make test-live LIVE_S3_BUCKET=live-check LIVE_S3_ENDPOINT=http://127.0.0.1:4566

With LIVE_S3_ENDPOINT the bucket is created if missing (credentials default to test/test);
on AWS it must exist. Objects are written under `live-test/` and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace

import pytest
import requests

from chalicelib.presign import Presigner
from chalicelib.s3 import make_s3_client
from chalicelib.settings import Settings

BUCKET = os.environ.get("LIVE_S3_BUCKET", "")
ENDPOINT = os.environ.get("LIVE_S3_ENDPOINT") or None
pytestmark = pytest.mark.skipif(
    not BUCKET, reason="opt-in: set LIVE_S3_BUCKET (and LIVE_S3_ENDPOINT) or run make test-live"
)


@pytest.fixture(scope="module")
def settings():
    if ENDPOINT:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    region = os.environ.get("LIVE_S3_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return Settings(bucket=BUCKET, region=region, prefix="live-test/", endpoint_url=ENDPOINT)


@pytest.fixture(scope="module")
def s3(settings):
    client = make_s3_client(settings)
    if ENDPOINT:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)
    yield client
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=settings.prefix)
    for obj in listed.get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def test_issued_url_is_accepted_with_no_extra_headers(settings, s3):
    ticket = Presigner(s3, settings).put_ticket()
    payload = os.urandom(4096)
    response = requests.put(ticket.url, data=payload, timeout=30)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=BUCKET, Key=ticket.key)["Body"].read() == payload


def test_tampered_signature_is_refused(settings, s3):
    url = Presigner(s3, settings).put_ticket().url
    last = url[-1]
    tampered = url[:-1] + ("0" if last != "0" else "1")
    response = requests.put(tampered, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_url_cannot_be_redirected_to_another_key(settings, s3):
    ticket = Presigner(s3, settings).put_ticket()
    other = ticket.url.replace(ticket.upload_id, "00000000-0000-4000-8000-000000000000")
    response = requests.put(other, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_expired_url_is_refused(settings, s3):
    ticket = Presigner(s3, replace(settings, url_expires=1)).put_ticket()
    time.sleep(2.5)
    response = requests.put(ticket.url, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "expired" in response.text
