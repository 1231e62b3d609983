"""`make run S3=strict`: the same stack on LocalStack's S3 with signature validation, which
refuses what AWS refuses and moto accepts: a tampered or expired URL, a header that is not
the signed one, bytes that do not match a signed Content-MD5."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
import requests

from tests.e2e.test_events import settled
from tests.stack import local_s3
from tests.support import png

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


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [("Content-Disposition", 'attachment; filename="invoice.hta"',
      "unexpected-header: Content-Disposition is not the one the service signs"),
     ("Content-Encoding", "gzip",
      "unexpected-header: Content-Encoding is set but the service sets none"),
     ("Cache-Control", "public, max-age=31536000",
      "unexpected-header: Cache-Control is set but the service sets none")],
)  # fmt: skip
def test_an_unsigned_header_the_strict_s3_stores_gets_the_upload_rejected(
    strict_stack, header, value, reason
):
    # GIVEN a URL that signs the type and the name, and an uploader who adds a header
    body = ticket(strict_stack, content_type="image/png", filename="dot.png")
    headers = {**body["headers"], header: value}
    # WHEN S3 (which checks only the signed headers) takes it
    assert requests.put(body["PUT_URL"], data=png(), headers=headers, timeout=30).status_code == 200
    # THEN the stack's verifier, run by S3's event, rejects the upload and moves it to
    # quarantine (LocalStack cannot delete conditionally: the verifier HEADs first there)
    assert settled(strict_stack, body["UUID"]) == {
        "UUID": body["UUID"], "status": "rejected", "reason": reason}  # fmt: skip
    s3 = local_s3(strict_stack)
    assert "Contents" not in s3.list_objects_v2(Bucket="uploads-local", Prefix=body["key"])
    # S3 had stored the header (the copy in quarantine keeps it): read after the verdict,
    # since the verifier may move the object before this test could HEAD it
    stored = s3.head_object(Bucket="uploads-local", Key=f"quarantine/{body['key']}")
    assert {"Content-Disposition": stored.get("ContentDisposition"),
            "Content-Encoding": stored.get("ContentEncoding"),
            "Cache-Control": stored.get("CacheControl")}[header] == value  # fmt: skip
    quarantined = s3.get_object_tagging(Bucket="uploads-local", Key=f"quarantine/{body['key']}")
    assert {t["Key"]: t["Value"] for t in quarantined["TagSet"]} == {
        "upload-status": "rejected", "upload-reason": reason}  # fmt: skip


def test_the_headers_the_service_signs_are_verified_on_the_strict_s3(strict_stack):
    body = ticket(strict_stack, content_type="image/png", filename="dot.png",
                  disposition="attachment")  # fmt: skip
    assert requests.put(body["PUT_URL"], data=png(), headers=body["headers"], timeout=30).ok
    assert settled(strict_stack, body["UUID"])["status"] == "verified"


def test_a_part_url_with_a_size_stores_no_other_length(strict_stack):
    # GIVEN a multipart upload and a part URL that signs the part's size
    created = requests.post(f"{strict_stack.api}/s3/multipart", json={"filename": "a.bin"},
                            timeout=10).json()  # fmt: skip
    part = f"{strict_stack.api}/s3/multipart/{created['uploadId']}/1"
    ticket = requests.get(part, params={"key": created["key"], "size": "100"}, timeout=10).json()
    assert ticket["headers"] == {"Content-Length": "100"}
    # WHEN a larger part is sent with it, THEN S3 refuses it; the signed size is stored
    larger = requests.put(ticket["url"], data=b"x" * (12 * 1024), timeout=30)
    assert larger.status_code == 403, larger.text
    assert requests.put(ticket["url"], data=b"x" * 100, timeout=30).status_code == 200
    parts = local_s3(strict_stack).list_parts(Bucket="uploads-local", Key=created["key"],
                                              UploadId=created["uploadId"])["Parts"]  # fmt: skip
    assert [p["Size"] for p in parts] == [100]


def sign(stack, **request) -> dict[str, Any]:
    """Uppy's signRequest through POST /s3/sign."""
    answer = requests.post(f"{stack.api}/s3/sign", json=request, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_an_unsigned_disposition_on_a_signed_multipart_create_gets_the_upload_rejected(
    strict_stack,
):
    # GIVEN Uppy's signed create, sent with a Content-Disposition the service never signed
    create = sign(strict_stack, method="POST", key="3b0c-photo.png")
    headers = {**create.get("headers", {}), "Content-Disposition": 'attachment; filename="a.hta"'}
    made = requests.post(create["url"], headers=headers, timeout=30)
    assert made.status_code == 200, made.text  # S3 checks only the signed headers
    (upload_id,) = re.findall("<UploadId>([^<]+)</UploadId>", made.text)
    part = sign(strict_stack, method="PUT", key=create["key"], uploadId=upload_id, partNumber=1)
    etag = requests.put(part["url"], data=png(), timeout=30).headers["ETag"]
    done = sign(strict_stack, method="POST", key=create["key"], uploadId=upload_id)
    xml = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>"
    completed = requests.post(done["url"], data=xml + "</CompleteMultipartUpload>",
                              headers=done["headers"], timeout=30)  # fmt: skip
    assert completed.status_code == 200, completed.text
    # THEN the stack's verifier rejects what was assembled, which S3 stored with the header
    # (read in quarantine, after the verdict: the verifier may move it first)
    uuid = create["key"].split("/")[-1].split(".")[0]
    assert settled(strict_stack, uuid) == {"UUID": uuid, "status": "rejected", "reason": (
        "unexpected-header: Content-Disposition is not the one the service signs")}  # fmt: skip
    stored = local_s3(strict_stack).head_object(Bucket="uploads-local",
                                                Key=f"quarantine/{create['key']}")  # fmt: skip
    assert stored["ContentDisposition"] == 'attachment; filename="a.hta"'
