"""POST /s3/sign, Uppy 6's signRequest: each S3 request Uppy would send is presigned under
the service's rules, and the requests sent with the answers reach moto's S3 over HTTP.
(Whether S3 enforces each signed header is the strict S3's to show: tests/browser.)"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import requests

from tests.functional.conftest import BUCKET
from tests.functional.test_multipart import post_json
from tests.support import query

MiB = 1024**2
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def sign(api, **request):
    return post_json(api, "/s3/sign", request)


def signed(api, **request):
    response = sign(api, **request)
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = response.json_body
    return answer


def refused(api, **request) -> str:
    response = sign(api, **request)
    assert response.status_code == 400, response.body
    message: str = response.json_body["Message"]
    return message


def uppy_multipart(api, parts: list[bytes], requested="3b0c-photo.JPG"):
    """What @uppy/aws-s3 does with signRequest: create, PUT each part, complete."""
    create = signed(api, method="POST", key=requested)
    headers = {"Content-Type": "image/jpeg", **create.get("headers", {})}
    made = requests.post(create["url"], headers=headers, timeout=10)
    assert made.status_code == 200, made.text
    (upload_id,) = re.findall("<UploadId>([^<]+)</UploadId>", made.text)
    key = create["key"]
    etags = []
    for number, data in enumerate(parts, 1):
        part = signed(api, method="PUT", key=key, uploadId=upload_id, partNumber=number)
        put = requests.put(part["url"], data=data, timeout=30)
        assert put.status_code == 200, put.text
        etags.append(put.headers["ETag"])
    return key, upload_id, etags


def complete_xml(etags):
    parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                    for n, e in enumerate(etags, 1))  # fmt: skip
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>"


def test_put_object_is_a_post_policy_for_a_key_the_server_names(api, s3):
    answer = signed(api, method="PUT", key="uppy-chosen/../../etc/photo.PNG",
                    contentType="image/png")  # fmt: skip
    assert set(answer) == {"url", "fields", "key"}
    assert re.fullmatch(f"put_folder/{UUID}\\.png", answer["key"]), answer["key"]
    assert (answer["fields"]["key"], answer["fields"]["Content-Type"]) == (
        answer["key"], "image/png"
    )  # fmt: skip
    posted = requests.post(answer["url"], data=answer["fields"],
                           files={"file": ("photo.png", b"\x89PNG x")}, timeout=10)  # fmt: skip
    assert posted.status_code == 204, posted.text
    assert s3.get_object(Bucket=BUCKET, Key=answer["key"])["Body"].read() == b"\x89PNG x"


def test_multipart_through_signed_requests_lands_in_the_callers_space(api, s3):
    first, last = os.urandom(5 * MiB), b"the end"
    key, upload_id, etags = uppy_multipart(api, [first, last])
    assert re.fullmatch(f"put_folder/{UUID}\\.jpg", key), key
    listing = signed(api, method="GET", key=key, uploadId=upload_id)
    listed = requests.get(listing["url"], timeout=10)
    assert re.findall("<PartNumber>([0-9]+)</PartNumber>", listed.text) == ["1", "2"]
    done = signed(api, method="POST", key=key, uploadId=upload_id)
    assert done["headers"] == {"x-amz-mp-object-size": str(len(first) + len(last))}
    assert query(done["url"])["X-Amz-SignedHeaders"] == "host;x-amz-mp-object-size"
    headers = {"Content-Type": "application/xml", **done["headers"]}
    completed = requests.post(done["url"], data=complete_xml(etags), headers=headers, timeout=30)
    assert completed.status_code == 200, completed.text
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert (stored["Body"].read(), stored["ContentType"]) == (first + last, "image/jpeg")


def test_no_overwrite_signs_if_none_match_on_completion_and_refuses_single_files(
    api, s3, monkeypatch
):
    monkeypatch.setenv("UPLOAD_NO_OVERWRITE", "true")
    key, upload_id, _ = uppy_multipart(api, [b"small"])
    done = signed(api, method="POST", key=key, uploadId=upload_id)
    assert done["headers"] == {"x-amz-mp-object-size": "5", "If-None-Match": "*"}
    assert refused(api, method="PUT", key="a.png", contentType="image/png") == (
        "single-file uploads are off because UPLOAD_NO_OVERWRITE is on: S3 bounds their size "
        "only with a POST policy, which cannot carry If-None-Match; allowed: multipart "
        "(Uppy: shouldUseMultipart: () => true)"
    )


def test_a_completion_over_the_size_limit_is_refused_and_aborted(api, s3, monkeypatch):
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(5 * MiB + 3))
    key, upload_id, _ = uppy_multipart(api, [os.urandom(5 * MiB), b"four"])
    assert refused(api, method="POST", key=key, uploadId=upload_id) == (
        f"the upload is {5 * MiB + 4} bytes, over the limit; allowed: at most {5 * MiB + 3} "
        "bytes (UPLOAD_MAX_BYTES). It was aborted."
    )
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


WILDCARD_HINT = (
    " (a wildcard admits the types known by their bytes, never a page, script or program)"
)


def test_the_type_allowlist_holds_on_both_single_and_multipart(api, s3, monkeypatch):
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", "image/*")
    assert refused(api, method="PUT", key="a.html", contentType="text/html") == (
        "content_type 'text/html' is not allowed; allowed: image/*" + WILDCARD_HINT
    )
    assert refused(api, method="POST", key="x-page.html") == (
        "content_type 'text/html' is not allowed; allowed: image/*" + WILDCARD_HINT
    )
    assert refused(api, method="POST", key="x-no-extension").startswith(
        "the type of 'x-no-extension' is not known from its extension"
    )
    create = signed(api, method="POST", key="x-cat.webp")
    assert create["headers"] == {"Content-Type": "image/webp"}


def test_requests_for_keys_not_issued_to_the_caller_are_refused(api, s3):
    for key in ("put_folder/../secret", "someone-else/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b",
                "put_folder/not-a-uuid.png"):  # fmt: skip
        for request in ({"method": "PUT", "uploadId": "u", "partNumber": 1},
                        {"method": "POST", "uploadId": "u"}, {"method": "GET", "uploadId": "u"},
                        {"method": "DELETE", "uploadId": "u"}):  # fmt: skip
            message = refused(api, key=key, **request)
            assert message.startswith(f"key {key!r} is not an upload key issued to you")


def test_someone_elses_upload_id_is_a_404_at_completion(api, s3):
    key, _, _ = uppy_multipart(api, [b"x"])
    response = sign(api, method="POST", key=key, uploadId="not-this-keys-upload")
    assert (response.status_code, response.json_body["Code"]) == (404, "NotFoundError")


@pytest.mark.parametrize(
    ("request_body", "message"),
    [({"method": "PUT", "key": "put_folder/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b.png",
       "uploadId": "u", "partNumber": 10001},
      "part number '10001' is not valid; allowed: 1 to 10000"),
     ({"method": "DELETE", "key": "k.png"},
      "deleting an object is not offered; allowed: PutObject and the multipart requests "
      "(an upload in progress is removed by AbortMultipartUpload)"),
     ({"method": "PATCH", "key": "k"},
      "method 'PATCH' with these fields is not a request Uppy signs; allowed: PUT "
      "(PutObject, or UploadPart with uploadId and partNumber), POST (CreateMultipartUpload,"
      " or CompleteMultipartUpload with uploadId), GET and DELETE with uploadId (ListParts,"
      " AbortMultipartUpload)"),
     ({"method": "PUT", "key": ""}, "key must be a string of 1 to 1024 characters"),
     ({"method": "PUT", "key": "k" * 1025}, "key must be a string of 1 to 1024 characters"),
     ({"method": "PUT", "key": "k", "partNumber": "1"}, "partNumber must be a whole number"),
     ({"method": "PUT", "key": "k", "uploadId": 5}, "uploadId must be a string"),
     ({"method": "PUT", "key": "k", "bucket": "other"},
      "unknown field ['bucket']; allowed: method, key, uploadId, partNumber, contentType, "
      "expiresIn"),
     ({"method": "PUT", "key": "k", "contentType": "\ud800"},
      "parameter 'contentType' is not valid Unicode text"),
     ({"method": "POST", "key": "a\udc00.png"}, "parameter 'key' is not valid Unicode text"),
     ({"method": {}, "key": "k"}, "method must be a string: PUT, POST, GET or DELETE"),
     ({"method": ["PUT"], "key": "k"}, "method must be a string: PUT, POST, GET or DELETE")],
)  # fmt: skip
def test_malformed_requests_are_a_400_that_says_what_is_allowed(api, s3, request_body, message):
    response = post_json(api, "/s3/sign", request_body)
    assert (response.status_code, response.json_body["Message"]) == (400, message)


def test_the_checksum_rule_turns_the_route_off_and_says_why(api, s3, monkeypatch):
    monkeypatch.setenv("UPLOAD_REQUIRE_CHECKSUM", "true")
    assert refused(api, method="POST", key="a.png") == (
        "POST /s3/sign is off because UPLOAD_REQUIRE_CHECKSUM is on: Uppy sends no checksum; "
        "allowed: the project's browser client (browser/presigned-upload.js), or /put-url "
        "and the /s3/multipart routes with sha256"
    )


@pytest.mark.parametrize(
    ("requested", "content_type", "suffix"),
    [("x-photo.PNG", "image/png", ".png"), ("x-report.html", "image/png", ""),
     ("x-a.svg", "image/jpeg", ""), ("x-scan.jpeg", "image/jpeg; q=1", ".jpeg"),
     ("no-extension", "image/gif", "")],
)  # fmt: skip
def test_a_single_files_key_keeps_its_extension_only_for_the_type_stored(
    api, s3, requested, content_type, suffix
):
    answer = signed(api, method="PUT", key=requested, contentType=content_type)
    assert re.fullmatch(f"put_folder/{UUID}{re.escape(suffix)}", answer["key"]), answer["key"]
    assert answer["fields"]["Content-Type"] == content_type


def test_a_multipart_keys_extension_is_kept_only_when_it_names_a_type(api, s3):
    known = signed(api, method="POST", key="x-clip.MP4")
    assert re.fullmatch(f"put_folder/{UUID}\\.mp4", known["key"]), known["key"]
    assert known["headers"] == {"Content-Type": "video/mp4"}
    unknown = signed(api, method="POST", key="x-notes.qqq")
    assert re.fullmatch(f"put_folder/{UUID}", unknown["key"]), unknown["key"]
    assert "headers" not in unknown


@pytest.mark.parametrize(
    ("key", "content_type"),
    [("3b0c-invoice.exe", "application/x-msdownload"), ("3b0c-invoice.HTA", "application/hta"),
     ("3b0c-run.bat", "application/x-msdos-program")],
)  # fmt: skip
def test_a_name_that_runs_on_a_desktop_is_dropped_from_the_key(api, s3, key, content_type):
    # A single file: the type is signed, but the key never ends in the program's extension.
    single = signed(api, method="PUT", key=key, contentType=content_type)
    assert re.fullmatch(r"put_folder/[0-9a-f-]{36}", single["key"]), single["key"]
    # Multipart: the same.
    created = signed(api, method="POST", key=key)
    assert re.fullmatch(r"put_folder/[0-9a-f-]{36}", created["key"]), created["key"]
