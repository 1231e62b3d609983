"""Opt-in tier: the URLs we issue, judged by an S3 that verifies signatures.

moto accepts any signature, so this tier runs only against a strict S3: real AWS, or a
local S3 with signature validation (LocalStack with S3_SKIP_SIGNATURE_VALIDATION=0).

    make test-live LIVE_S3_BUCKET=my-test-bucket                 # real AWS, ambient credentials
    make test-live LIVE_S3_BUCKET=live-check LIVE_S3_ENDPOINT=http://127.0.0.1:4566

With LIVE_S3_ENDPOINT the bucket is created if missing (credentials default to test/test);
on AWS it must exist. Objects are written under `live-test/` and deleted afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time

import pytest
import requests

from chalicelib.core.presign import Presigner
from chalicelib.core.rules import UploadRequest
from chalicelib.core.s3 import make_s3_client
from chalicelib.core.settings import Settings
from chalicelib.core.signing import SigV4Backend

BUCKET = os.environ.get("LIVE_S3_BUCKET", "")
ENDPOINT = os.environ.get("LIVE_S3_ENDPOINT") or None
# One caller's key space under the settings' prefix, as an authorized stage issues.
SPACE = "live-test/AIDALIVECALLER/"
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


def presigner_for(settings):
    """The service's own signer (no AWS SDK), as deployed."""
    backend = SigV4Backend.for_settings(settings, os.environ)
    assert backend is not None
    return Presigner(backend, settings)


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
    ticket = presigner_for(settings).put_ticket(SPACE)
    payload = os.urandom(4096)
    response = requests.put(ticket.url, data=payload, timeout=30)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=BUCKET, Key=ticket.key)["Body"].read() == payload


def test_tampered_signature_is_refused(settings, s3):
    url = presigner_for(settings).put_ticket(SPACE).url
    last = url[-1]
    tampered = url[:-1] + ("0" if last != "0" else "1")
    response = requests.put(tampered, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_url_cannot_be_redirected_to_another_key(settings, s3):
    ticket = presigner_for(settings).put_ticket(SPACE)
    other = ticket.url.replace(ticket.upload_id, "00000000-0000-4000-8000-000000000000")
    response = requests.put(other, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_expired_url_is_refused(settings, s3):
    ticket = presigner_for(settings._replace(url_expires=1)).put_ticket(SPACE)
    time.sleep(2.5)
    response = requests.put(ticket.url, data=b"x", timeout=30)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "expired" in response.text


DATA = b"%PDF-1.7 live rules check\n" * 40
DATA_MD5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()  # noqa: S324 (S3's checksum)
RULES = UploadRequest(
    filename="doc.pdf", content_type="application/pdf", size=len(DATA), md5=DATA_MD5,
    disposition="attachment",
)  # fmt: skip


@pytest.fixture(scope="module")
def strict(settings):
    return settings._replace(
        allowed_types=("application/pdf",), max_bytes=4096, require_checksum=True, no_overwrite=True
    )


def test_compliant_upload_with_every_signed_rule_is_accepted(strict, s3):
    ticket = presigner_for(strict).put_ticket(SPACE, RULES)
    put = requests.put(ticket.url, data=DATA, headers=ticket.headers, timeout=30)
    assert put.status_code == 200, put.text
    head = s3.head_object(Bucket=BUCKET, Key=ticket.key)
    assert (head["ContentType"], head["ContentLength"]) == ("application/pdf", len(DATA))
    assert head["ContentDisposition"] == ticket.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("header", "value"),
    [("Content-Type", "text/html"), ("Content-Disposition", "inline"), ("If-None-Match", None),
     ("x-amz-meta-filename", "other.pdf"), ("x-amz-meta-filename", None)],
)  # fmt: skip
def test_changing_or_dropping_a_signed_header_is_refused(strict, s3, header, value):
    ticket = presigner_for(strict).put_ticket(SPACE, RULES)
    headers = dict(ticket.headers)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    put = requests.put(ticket.url, data=DATA, headers=headers, timeout=30)
    assert put.status_code == 403, put.text


def test_bytes_that_do_not_match_the_md5_are_refused(strict, s3):
    ticket = presigner_for(strict).put_ticket(SPACE, RULES)
    corrupted = DATA[:-1] + b"!"
    put = requests.put(ticket.url, data=corrupted, headers=ticket.headers, timeout=30)
    assert put.status_code == 400, put.text
    assert "<Code>BadDigest</Code>" in put.text


def test_a_replayed_url_cannot_overwrite(strict, s3):
    ticket = presigner_for(strict).put_ticket(SPACE, RULES)
    first = requests.put(ticket.url, data=DATA, headers=ticket.headers, timeout=30)
    replay = requests.put(ticket.url, data=DATA, headers=ticket.headers, timeout=30)
    assert (first.status_code, replay.status_code) == (200, 412)


def test_form_post_enforces_the_size_range(settings, s3):
    small = settings._replace(max_bytes=100)
    ticket = presigner_for(small).post_ticket(SPACE, UploadRequest(content_type="text/plain"))
    ok = requests.post(ticket.url, data=ticket.fields, files={"file": b"x" * 100}, timeout=30)
    big = requests.post(ticket.url, data=ticket.fields, files={"file": b"x" * 101}, timeout=30)
    assert ok.status_code == 204, ok.text
    assert big.status_code == 400, big.text
    assert "<Code>EntityTooLarge</Code>" in big.text


def test_form_post_with_any_type_needs_no_content_type_field(settings, s3):
    ticket = presigner_for(settings).post_ticket(SPACE)
    ok = requests.post(ticket.url, data=ticket.fields, files={"file": b"hello"}, timeout=30)
    assert ok.status_code == 204, ok.text


def test_download_url_fetches_the_upload_under_its_original_name(strict, s3):
    presigner = presigner_for(strict)
    ticket = presigner.put_ticket(SPACE, RULES)
    put = requests.put(ticket.url, data=DATA, headers=ticket.headers, timeout=30)
    assert put.status_code == 200, put.text
    stored = s3.head_object(Bucket=BUCKET, Key=ticket.key)
    assert stored["Metadata"] == {"filename": "doc.pdf"}

    download = presigner.download_ticket(ticket.upload_id, ticket.key, "doc.pdf")
    got = requests.get(download.url, timeout=30)
    assert (got.status_code, got.content) == (200, DATA)
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"doc.pdf\"; filename*=UTF-8''doc.pdf"
    )
    renamed = download.url.replace("doc.pdf", "evil.html")
    assert requests.get(renamed, timeout=30).status_code == 403


def test_part_urls_are_accepted_and_a_signed_part_md5_is_enforced(settings, s3):
    presigner = presigner_for(settings)
    key = f"{SPACE}00000000-0000-4000-8000-00000000000a.bin"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    first, last = os.urandom(5 * 1024 * 1024), b"tail"
    first_md5 = base64.b64encode(hashlib.md5(first).digest()).decode()  # noqa: S324
    signed = presigner.part_ticket(key, upload, 1, {"Content-MD5": first_md5})
    wrong = requests.put(signed.url, data=first[:-1] + b"!", headers=signed.headers, timeout=60)
    assert wrong.status_code == 400, wrong.text
    assert "<Code>BadDigest</Code>" in wrong.text
    ok = requests.put(signed.url, data=first, headers=signed.headers, timeout=60)
    plain = requests.put(presigner.part_ticket(key, upload, 2, {}).url, data=last, timeout=30)
    assert (ok.status_code, plain.status_code) == (200, 200), plain.text
    tampered = presigner.part_ticket(key, upload, 3, {}).url.replace("partNumber=3", "partNumber=4")
    assert requests.put(tampered, data=last, timeout=30).status_code == 403
    parts = [{"PartNumber": 1, "ETag": ok.headers["ETag"]},
             {"PartNumber": 2, "ETag": plain.headers["ETag"]}]  # fmt: skip
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == first + last


DATA_SHA256 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
SHA256_RULES = RULES._replace(md5=None, sha256=DATA_SHA256)


def test_a_signed_sha256_is_verified_and_stored(strict, s3):
    ticket = presigner_for(strict).put_ticket(SPACE, SHA256_RULES)
    wrong = requests.put(ticket.url, data=DATA[:-1] + b"!", headers=ticket.headers, timeout=30)
    assert (wrong.status_code, "<Code>BadDigest</Code>" in wrong.text) == (400, True), wrong.text
    headers = {k: v for k, v in ticket.headers.items() if k != "x-amz-checksum-sha256"}
    dropped = requests.put(ticket.url, data=DATA, headers=headers, timeout=30)
    assert dropped.status_code == 403, dropped.text
    put = requests.put(ticket.url, data=DATA, headers=ticket.headers, timeout=30)
    assert put.status_code == 200, put.text
    head = s3.head_object(Bucket=BUCKET, Key=ticket.key, ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head.get("ChecksumType")) == (DATA_SHA256, "FULL_OBJECT")


def test_sha256_parts_are_verified_and_the_object_stores_their_composite(settings, s3):
    presigner = presigner_for(settings)
    key = f"{SPACE}3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6c.bin"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="SHA256")
    first, last = os.urandom(5 * 1024 * 1024), b"tail"
    digests = [hashlib.sha256(first).digest(), hashlib.sha256(last).digest()]
    b64 = [base64.b64encode(d).decode() for d in digests]
    tickets = [presigner.part_ticket(key, upload["UploadId"], n, {"x-amz-checksum-sha256": c})
               for n, c in ((1, b64[0]), (2, b64[1]))]  # fmt: skip
    one, two = tickets
    wrong = requests.put(one.url, data=first[:-1] + b"!", headers=one.headers, timeout=60)
    assert (wrong.status_code, "<Code>BadDigest</Code>" in wrong.text) == (400, True), wrong.text
    assert requests.put(one.url, data=first, timeout=60).status_code == 403  # header dropped
    etags = [requests.put(t.url, data=d, headers=t.headers, timeout=60).headers["ETag"]
             for t, d in ((one, first), (two, last))]  # fmt: skip
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])["Parts"]
    assert [p["ChecksumSHA256"] for p in listed] == b64
    parts = [{"PartNumber": n, "ETag": e, "ChecksumSHA256": c}
             for n, e, c in zip((1, 2), etags, b64, strict=True)]  # fmt: skip
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})  # fmt: skip
    composite = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode() + "-2"
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head.get("ChecksumType")) == (composite, "COMPOSITE")
