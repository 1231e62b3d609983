"""`make run S3=strict`: the same stack on LocalStack's S3 with signature validation, which
refuses what AWS refuses and moto accepts: a tampered or expired URL, a header that is not
the signed one, bytes that do not match a signed Content-MD5."""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests

from tests.stack import local_s3

pytestmark = [pytest.mark.e2e, pytest.mark.strict]
BODY = b"bytes checked by a strict S3\n"


def ticket(stack, **params):
    response = requests.get(f"{stack.api}/put-url", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_issued_url_stores_the_bytes(strict_stack):
    body = ticket(strict_stack)
    assert requests.put(body["PUT_URL"], data=BODY, timeout=30).status_code == 200
    stored = local_s3(strict_stack).get_object(Bucket="uploads-local", Key=body["key"])
    assert stored["Body"].read() == BODY


def test_a_tampered_url_is_refused_with_403(strict_stack):
    body = ticket(strict_stack)
    tampered = body["PUT_URL"].replace(body["UUID"], body["UUID"][::-1])
    refused = requests.put(tampered, data=BODY, timeout=30)
    assert (refused.status_code, "<Code>SignatureDoesNotMatch</Code>" in refused.text) == (
        403,
        True,
    )


def test_a_header_other_than_the_signed_one_is_refused(strict_stack):
    body = ticket(strict_stack, content_type="text/plain", filename="a.txt")
    assert body["headers"]["Content-Type"] == "text/plain"
    headers = {**body["headers"], "Content-Type": "text/html"}
    assert requests.put(body["PUT_URL"], data=BODY, headers=headers, timeout=30).status_code == 403


def test_bytes_that_do_not_match_the_signed_md5_are_refused(strict_stack):
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()  # noqa: S324 (S3's Content-MD5)
    body = ticket(strict_stack, md5=md5, size=str(len(BODY)))
    wrong = BODY.replace(b"bytes", b"BYTES")
    refused = requests.put(body["PUT_URL"], data=wrong, headers=body["headers"], timeout=30)
    assert (refused.status_code, "<Code>BadDigest</Code>" in refused.text) == (400, True)
    accepted = requests.put(body["PUT_URL"], data=BODY, headers=body["headers"], timeout=30)
    assert accepted.status_code == 200


def preflight(stack, headers: str) -> requests.Response:
    body = ticket(stack)
    return requests.options(body["PUT_URL"], timeout=10, headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": headers})  # fmt: skip


def test_the_bucket_lets_a_browser_send_the_checksum_header_and_read_it_back(strict_stack):
    allowed = preflight(strict_stack, "content-type,x-amz-checksum-sha256")
    assert allowed.status_code == 200, allowed.text
    assert "x-amz-checksum-sha256" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert allowed.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-checksum-sha256"
    # A header the rule does not list is refused, as real S3 refuses it.
    assert preflight(strict_stack, "x-amz-checksum-crc32").status_code == 403
