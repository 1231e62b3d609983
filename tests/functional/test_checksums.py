"""SHA-256 integrity through the routes: what is signed, what S3 is sent at completion,
and what the status route reports. moto neither verifies nor stores checksums, so S3's
side of each exchange is pinned with a Stubber here; tests/e2e/test_strict_s3.py has the
strict S3 verify and store them for real."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from botocore.stub import Stubber

from chalicelib.core.errors import UploadRejected
from chalicelib.multipart.service import CompletedPart, UploadRef
from tests.functional.conftest import BUCKET, app_module
from tests.functional.test_multipart import PART1, PART2, create, part_url, post_json, put_part
from tests.support import query

MiB = 1024**2
ID = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
KEY = f"put_folder/{ID}.bin"
ETAG1, ETAG2 = '"' + "a" * 32 + '"', '"' + "b" * 32 + '"'
SHA1_B64 = base64.b64encode(hashlib.sha256(PART1).digest()).decode()
SHA2_B64 = base64.b64encode(hashlib.sha256(PART2).digest()).decode()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_put_url_signs_the_sha256_as_a_header_and_returns_it(api):
    sha256 = b64(hashlib.sha256(b"abc").digest())
    response = api.http.get(f"/put-url?sha256={quote(sha256, safe='')}")
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["headers"] == {"x-amz-checksum-sha256": sha256}
    signed = query(body["PUT_URL"])
    assert signed["X-Amz-SignedHeaders"] == "host;x-amz-checksum-sha256"
    assert "x-amz-checksum-sha256" not in {name.lower() for name in signed}


def test_a_multipart_upload_created_with_sha256_says_so_and_signs_each_parts_checksum(api, s3):
    upload = create(api, checksum="sha256")
    assert (upload["checksum"], upload["checksum_required"]) == ("sha256", False)
    ticket = part_url(api, upload, 1, sha256=quote(SHA1_B64, safe=""))
    assert ticket["headers"] == {"x-amz-checksum-sha256": SHA1_B64}
    assert query(ticket["url"])["X-Amz-SignedHeaders"] == "host;x-amz-checksum-sha256"
    both = part_url(
        api,
        upload,
        2,
        sha256=quote(SHA2_B64, safe=""),
        md5=quote(b64(hashlib.md5(PART2).digest()), safe=""),  # noqa: S324 (Content-MD5)
    )
    assert query(both["url"])["X-Amz-SignedHeaders"] == "content-md5;host;x-amz-checksum-sha256"
    put_part(ticket["url"], PART1, ticket["headers"])


@pytest.mark.parametrize(
    ("checksum", "message"),
    [("md5", "checksum 'md5' is not supported; allowed: 'sha256', or none"),
     ("CRC32", "checksum 'CRC32' is not supported; allowed: 'sha256', or none"),
     (["sha256"], "checksum \"['sha256']\" is not supported; allowed: 'sha256', or none"),
     (256, "checksum '256' is not supported; allowed: 'sha256', or none")],
)  # fmt: skip
def test_only_sha256_is_a_multipart_checksum(api, checksum, message):
    response = post_json(api, "/s3/multipart", {"filename": "a.bin", "checksum": checksum})
    assert (response.status_code, response.json_body["Message"]) == (400, message)


def test_a_part_checksum_that_is_not_a_digest_is_a_400(api, s3):
    upload = create(api, checksum="sha256")
    response = api.http.get(f"/s3/multipart/{upload['uploadId']}/1?key={upload['key']}&sha256=abc")
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "sha256 'abc' is not valid; allowed: the base64 of the 32-byte SHA-256 digest, like "
        "'47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    )


def stubbed_services(monkeypatch):
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)  # outside a request: no stage variables
    svc = app_module.services()
    return svc, Stubber(svc.multipart._client()), Stubber(svc.multipart._completer())


def test_completion_sends_each_parts_checksum_as_s3_listed_it(s3, monkeypatch):
    # GIVEN an upload created with SHA256, whose parts S3 lists with their checksums
    svc, lister, completer = stubbed_services(monkeypatch)
    common = {"Bucket": BUCKET, "Key": KEY, "UploadId": "u1"}
    lister.add_response("list_parts", {
        "ChecksumAlgorithm": "SHA256", "IsTruncated": False,
        "Parts": [{"PartNumber": 1, "ETag": ETAG1, "Size": 5 * MiB, "ChecksumSHA256": SHA1_B64},
                  {"PartNumber": 2, "ETag": ETAG2, "Size": 7, "ChecksumSHA256": SHA2_B64}],
    }, {**common, "PartNumberMarker": 0})  # fmt: skip
    composite = b64(hashlib.sha256(b"composite").digest()) + "-2"
    # THEN S3 is sent those checksums (the client sent none), and its answer is passed on
    completer.add_response(
        "complete_multipart_upload",
        {"ETag": '"c-2"', "Key": KEY, "Bucket": BUCKET, "ChecksumSHA256": composite,
         "ChecksumType": "COMPOSITE"},
        {**common, "MpuObjectSize": 5 * MiB + 7,
         "MultipartUpload": {"Parts": [
             {"PartNumber": 1, "ETag": ETAG1, "ChecksumSHA256": SHA1_B64},
             {"PartNumber": 2, "ETag": ETAG2, "ChecksumSHA256": SHA2_B64}]}},
    )  # fmt: skip
    with lister, completer:
        done = svc.multipart.complete(
            "put_folder/", UploadRef(KEY, "u1"), [CompletedPart(1, ETAG1), CompletedPart(2, ETAG2)]
        )
    assert done.checksum is not None
    assert done.checksum.to_response() == {
        "algorithm": "SHA256", "value": composite, "type": "COMPOSITE"
    }  # fmt: skip
    lister.assert_no_pending_responses()
    completer.assert_no_pending_responses()


def test_a_checksummed_upload_with_a_part_s3_holds_no_checksum_for_is_refused(s3, monkeypatch):
    svc, lister, _ = stubbed_services(monkeypatch)
    lister.add_response("list_parts", {
        "ChecksumAlgorithm": "SHA256", "IsTruncated": False,
        "Parts": [{"PartNumber": 1, "ETag": ETAG1, "Size": 7}],
    })  # fmt: skip
    with lister, pytest.raises(UploadRejected) as info:
        svc.multipart.complete("put_folder/", UploadRef(KEY, "u1"), [CompletedPart(1, ETAG1)])
    assert str(info.value) == (
        "part 1 has no SHA256 checksum stored; allowed: upload it again with the sha256 "
        "its URL was signed for"
    )


def test_the_parts_listing_shows_each_parts_stored_sha256(api, s3, monkeypatch):
    _, lister, _ = stubbed_services(monkeypatch)
    lister.add_response("list_parts", {
        "ChecksumAlgorithm": "SHA256", "IsTruncated": False,
        "Parts": [{"PartNumber": 1, "ETag": ETAG1, "Size": 5 * MiB, "ChecksumSHA256": SHA1_B64},
                  {"PartNumber": 2, "ETag": ETAG2, "Size": 7}],
    })  # fmt: skip
    with lister:
        response = api.http.get(f"/s3/multipart/u1?key={KEY}")
    assert response.json_body == [
        {"PartNumber": 1, "ETag": ETAG1, "Size": 5 * MiB, "ChecksumSHA256": SHA1_B64},
        {"PartNumber": 2, "ETag": ETAG2, "Size": 7},
    ]


@pytest.mark.parametrize(
    ("head", "checksum"),
    [({"ChecksumSHA256": SHA1_B64, "ChecksumType": "FULL_OBJECT"},
      {"algorithm": "SHA256", "value": SHA1_B64, "type": "FULL_OBJECT"}),
     ({"ChecksumSHA256": SHA1_B64 + "-3", "ChecksumType": "COMPOSITE"},
      {"algorithm": "SHA256", "value": SHA1_B64 + "-3", "type": "COMPOSITE"}),
     # S3 stores a CRC64NVME for an upload that named no checksum; it is shown as stored.
     ({"ChecksumCRC64NVME": "M3eFcAZSQlc=", "ChecksumType": "FULL_OBJECT"},
      {"algorithm": "CRC64NVME", "value": "M3eFcAZSQlc=", "type": "FULL_OBJECT"}),
     ({}, None)],
)  # fmt: skip
def test_status_and_download_show_the_checksum_s3_stored(api, s3, monkeypatch, head, checksum):
    _, stub, _ = stubbed_services(monkeypatch)  # one client for status and multipart
    listed = {"Contents": [{"Key": KEY}], "IsTruncated": False}
    answer = {
        "ContentLength": 7,
        "ETag": ETAG1,
        "LastModified": datetime(2026, 11, 30, tzinfo=UTC),
        **head,
    }
    for _ in range(2):  # status, then the download URL
        stub.add_response(
            "list_objects_v2",
            listed,
            {"Bucket": BUCKET, "Prefix": f"put_folder/{ID}", "MaxKeys": 10},
        )
        stub.add_response("head_object", answer,
                          {"Bucket": BUCKET, "Key": KEY, "ChecksumMode": "ENABLED"})  # fmt: skip
    with stub:
        status = api.http.get(f"/uploads/{ID}").json_body
        download = api.http.get(f"/uploads/{ID}/download-url").json_body
    assert (status["status"], status["checksum"], download["checksum"]) == (
        "uploaded", checksum, checksum
    )  # fmt: skip
    stub.assert_no_pending_responses()
