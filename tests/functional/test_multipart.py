"""Multipart uploads through the Companion-shaped routes, with real parts uploaded to moto.

moto checks neither signatures nor Content-MD5 on presigned part URLs (tests/unit pins
what is signed); it does check part ETags, part sizes and If-None-Match on completion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import uuid

import pytest
import requests
from botocore.stub import Stubber

from chalicelib.multipart.service import UploadRef
from tests.functional.conftest import BUCKET, app_module
from tests.support import query

MiB = 1024**2
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PART1 = os.urandom(5 * MiB)
PART2 = b"the last part may be small"


def post_json(api, path, body):
    return api.http.post(path, body=json.dumps(body), headers={"Content-Type": "application/json"})


def create(api, **body):
    defaults = {"filename": "movie.MP4", "type": "video/mp4", "metadata": {"name": "movie.MP4"}}
    response = post_json(api, "/s3/multipart", {**defaults, **body})
    assert response.status_code == 200, response.body
    return response.json_body


def part_url(api, upload, number, **params):
    qs = "&".join(f"{k}={v}" for k, v in {"key": upload["key"], **params}.items())
    response = api.http.get(f"/s3/multipart/{upload['uploadId']}/{number}?{qs}")
    assert response.status_code == 200, response.body
    return response.json_body


def put_part(url, data, headers=None):
    response = requests.put(url, data=data, headers=headers or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def upload_parts(api, upload, *parts):
    return [
        {"PartNumber": n, "ETag": put_part(part_url(api, upload, n)["url"], data)}
        for n, data in enumerate(parts, start=1)
    ]


def complete(api, upload, parts):
    return post_json(
        api, f"/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}", {"parts": parts}
    )


def test_create_names_the_key_and_keeps_the_type_and_filename(api, s3):
    upload = create(api)
    assert re.fullmatch(rf"put_folder/{UUID}\.mp4", upload["key"])
    assert upload == {
        "key": f"put_folder/{upload['UUID']}.mp4",
        "uploadId": upload["uploadId"],
        "UUID": upload["UUID"],
        "bucket": BUCKET,
        "filename": "movie.MP4",
        "checksum": None,
        "checksum_required": False,
        "part_md5_required": False,
    }
    (listed,) = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert (listed["Key"], listed["UploadId"]) == (upload["key"], upload["uploadId"])


def test_parts_uploaded_listed_and_completed_arrive_byte_identical(api, s3):
    upload = create(api)
    parts = upload_parts(api, upload, PART1, PART2)
    listed = api.http.get(f"/s3/multipart/{upload['uploadId']}?key={upload['key']}").json_body
    assert listed == [
        {"PartNumber": 1, "ETag": parts[0]["ETag"], "Size": len(PART1)},
        {"PartNumber": 2, "ETag": parts[1]["ETag"], "Size": len(PART2)},
    ]
    assert parts[0]["ETag"] == f'"{hashlib.md5(PART1).hexdigest()}"'  # noqa: S324

    done = complete(api, upload, parts)
    assert done.status_code == 200, done.body
    assert done.json_body == {
        "location": done.json_body["location"],
        "key": upload["key"],
        "bucket": BUCKET,
        "etag": done.json_body["etag"],
        "UUID": upload["UUID"],
        "checksum": None,  # none was asked for (moto stores none from a presigned part)
    }
    # S3 answers with the object's URL (moto's is virtual-host style, whatever the request).
    assert done.json_body["location"].endswith(f"/{upload['key']}")
    stored = s3.get_object(Bucket=BUCKET, Key=upload["key"])
    assert stored["Body"].read() == PART1 + PART2
    assert (stored["ContentType"], stored["Metadata"]) == ("video/mp4", {"filename": "movie.MP4"})
    status = api.http.get(f"/uploads/{upload['UUID']}").json_body
    # The `local` stage scans for malware: "scanning" until the verdict.
    assert (status["status"], status["size"]) == ("scanning", len(PART1) + len(PART2))


def test_batch_signs_each_requested_part(api, s3):
    upload = create(api)
    batch = api.http.get(
        f"/s3/multipart/{upload['uploadId']}/batch?key={upload['key']}&partNumbers=2,1"
    ).json_body
    assert sorted(batch) == ["presignedUrls"]
    assert sorted(batch["presignedUrls"]) == ["1", "2"]
    for number, url in batch["presignedUrls"].items():
        assert query(url)["partNumber"] == number
        assert query(url)["uploadId"] == upload["uploadId"]
    parts = [
        {"PartNumber": 1, "ETag": put_part(batch["presignedUrls"]["1"], PART1)},
        {"PartNumber": 2, "ETag": put_part(batch["presignedUrls"]["2"], PART2)},
    ]
    assert complete(api, upload, parts).status_code == 200
    assert s3.get_object(Bucket=BUCKET, Key=upload["key"])["Body"].read() == PART1 + PART2


def test_part_url_answers_the_companion_shape(api):
    upload = create(api)
    body = part_url(api, upload, 7)
    assert body == {"url": body["url"], "expires": 300, "headers": {}}
    params = query(body["url"])
    assert (params["partNumber"], params["uploadId"], params["X-Amz-Expires"]) == (
        "7",
        upload["uploadId"],
        "300",
    )


def test_abort_deletes_the_upload(api, s3):
    upload = create(api)
    upload_parts(api, upload, PART2)
    aborted = api.http.delete(f"/s3/multipart/{upload['uploadId']}?key={upload['key']}")
    assert (aborted.status_code, aborted.json_body) == (200, {})
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)
    again = api.http.get(f"/s3/multipart/{upload['uploadId']}?key={upload['key']}")
    assert again.status_code == 404


def test_unknown_upload_id_is_a_404_that_says_why(api):
    key = f"put_folder/{uuid.uuid4()}.mp4"
    response = api.http.get(f"/s3/multipart/nosuchupload/2?key={key}")
    assert response.status_code == 200  # signing needs no S3 call; S3 refuses the PUT
    listed = api.http.get(f"/s3/multipart/nosuchupload?key={key}")
    assert (listed.status_code, listed.json_body) == (
        404,
        {
            "Code": "NotFoundError",
            "Message": f"no multipart upload 'nosuchupload' for key '{key}': it was completed "
            "or aborted, or never started; allowed: an uploadId from POST /s3/multipart",
        },
    )


@pytest.mark.parametrize(
    "key",
    ["put_folder/other.mp4", "elsewhere/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b",
     "put_folder/alice/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b", "put_folder/../x", ""],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/abc/1?"), ("GET", "/abc/batch?partNumbers=1&"), ("GET", "/abc?"),
     ("DELETE", "/abc?"), ("POST", "/abc/complete?")],
)  # fmt: skip
def test_keys_the_service_did_not_issue_are_refused(api, key, method, path):
    response = api.http.request(
        method,
        f"/s3/multipart{path}key={key}",
        body=json.dumps({"parts": [{"PartNumber": 1, "ETag": "x"}]}),
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json_body) == (
        400,
        {
            "Code": "BadRequestError",
            "Message": f"key {key!r} is not an upload key issued to you; allowed: the key "
            "returned by POST /s3/multipart",
        },
    )


@pytest.mark.parametrize(
    ("number", "message"),
    [("0", "part number '0' is not valid; allowed: 1 to 10000"),
     ("10001", "part number '10001' is not valid; allowed: 1 to 10000"),
     ("1e3", "part number '1e3' is not valid; allowed: 1 to 10000")],
)  # fmt: skip
def test_part_numbers_outside_s3s_range_are_refused(api, number, message):
    upload = create(api)
    response = api.http.get(f"/s3/multipart/{upload['uploadId']}/{number}?key={upload['key']}")
    assert (response.status_code, response.json_body["Message"]) == (400, message)


@pytest.fixture
def limited(monkeypatch):
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(6 * MiB))


def test_part_numbers_stop_where_the_size_limit_must_have_been_reached(api, limited):
    upload = create(api)
    assert part_url(api, upload, 2)["url"]
    response = api.http.get(f"/s3/multipart/{upload['uploadId']}/3?key={upload['key']}")
    assert response.json_body["Message"] == (
        "part number '3' is not valid; allowed: 1 to 2 (more parts would exceed UPLOAD_MAX_BYTES)"
    )


def test_a_declared_size_over_the_limit_is_refused_up_front(api, limited):
    response = post_json(api, "/s3/multipart", {"filename": "a.mp4", "size": 6 * MiB + 1})
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "size 6291457 is too large; allowed: 0 to 6291456",
    )


def test_completing_over_the_limit_aborts_and_refuses(api, s3, limited):
    upload = create(api)
    parts = upload_parts(api, upload, PART1, PART1[: 1 * MiB + 1])
    response = complete(api, upload, parts)
    assert (response.status_code, response.json_body) == (
        400,
        {
            "Code": "BadRequestError",
            "Message": "the upload is 6291457 bytes, over the limit; allowed: at most 6291456 "
            "bytes (UPLOAD_MAX_BYTES). It was aborted.",
        },
    )
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_completing_within_the_limit_is_stored(api, s3, limited):
    upload = create(api)
    parts = upload_parts(api, upload, PART1, PART2)
    assert complete(api, upload, parts).status_code == 200


def test_completion_cannot_overwrite_when_overwriting_is_off(api, s3, monkeypatch):
    monkeypatch.setenv("UPLOAD_NO_OVERWRITE", "true")
    upload = create(api)
    s3.put_object(Bucket=BUCKET, Key=upload["key"], Body=b"already here")
    response = complete(api, upload, upload_parts(api, upload, PART2))
    assert (response.status_code, response.json_body) == (
        409,
        {
            "Code": "ConflictError",
            "Message": f"an object already exists at {upload['key']!r} and "
            "UPLOAD_NO_OVERWRITE is on",
        },
    )
    assert s3.get_object(Bucket=BUCKET, Key=upload["key"])["Body"].read() == b"already here"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}],
         "part 1's ETag '\"0123456789abcdef0123456789abcdef\"' is not the one S3 holds; "
         "allowed: the ETag of each part as S3 lists it (GET /s3/multipart/{uploadId}); a "
         "part uploaded again must be listed with its new ETag"),
        ([{"PartNumber": 2, "ETag": "x"}, {"PartNumber": 1, "ETag": "y"}],
         "parts must be listed once each, in ascending PartNumber order"),
        ([], 'the body must list 1 to 10000 parts, like {"parts": [{"PartNumber": 1, "ETag": '
             '"\\"9b2cf535f27731c974343645a3985328\\""}]}'),
        ([{"PartNumber": "1", "ETag": "x"}],
         "part {'PartNumber': '1', 'ETag': 'x'} is not valid; allowed: {\"PartNumber\": 1 to "
         '10000, "ETag": the ETag S3 returned for that part}'),
    ],
)  # fmt: skip
def test_invalid_part_lists_are_a_400_that_says_what_is_allowed(api, s3, parts, message):
    upload = create(api)
    upload_parts(api, upload, PART2)
    response = complete(api, upload, parts)
    assert (response.status_code, response.json_body) == (
        400,
        {"Code": "BadRequestError", "Message": message},
    )


def test_parts_too_small_are_refused_on_completion(api, s3):
    upload = create(api)
    parts = upload_parts(api, upload, PART2, PART2)
    response = complete(api, upload, parts)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "every part but the last must be at least 5242880 bytes (5 MiB)",
    )


def test_type_allowlist_applies_to_multipart(api, monkeypatch):
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", "image/*")
    response = post_json(api, "/s3/multipart", {"filename": "a.mp4", "type": "video/mp4"})
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "content_type 'video/mp4' is not allowed; allowed: image/* (a wildcard admits the types "
        "known by their bytes, never a page, script or program)",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["a"], 'the body must be a JSON object like {"filename": "video.mp4", '
                '"type": "video/mp4"}'),
        ({"filename": "a", "key": "put_folder/x"},
         "unknown field ['key']; allowed: filename, type, size, metadata, checksum"),
        ({"size": "12"}, "size must be a whole number of bytes"),
        ({"filename": 3}, "filename must be a string"),
        ({"metadata": [1]}, "metadata must be a JSON object"),
    ],
)  # fmt: skip
def test_malformed_create_bodies_are_a_400(api, body, message):
    response = post_json(api, "/s3/multipart", body)
    assert (response.status_code, response.json_body["Message"]) == (400, message)


def test_checksum_rule_signs_each_parts_md5_and_turns_batches_off(api, monkeypatch):
    monkeypatch.setenv("UPLOAD_REQUIRE_CHECKSUM", "true")
    upload = create(api)
    assert (upload["checksum"], upload["checksum_required"]) == (None, True)
    assert upload["part_md5_required"] is True  # its old name, which client 1.0 reads
    md5 = base64.b64encode(hashlib.md5(PART2).digest()).decode()  # noqa: S324
    missing = api.http.get(f"/s3/multipart/{upload['uploadId']}/1?key={upload['key']}")
    assert missing.json_body["Message"] == (
        "a checksum of this part's bytes is required (UPLOAD_REQUIRE_CHECKSUM is on); allowed: "
        "sha256 (the base64 of the 32-byte SHA-256 digest, which browsers compute with "
        'crypto.subtle.digest, for an upload created with "checksum": "sha256", which S3 '
        "then demands on every part) or md5 (the base64 of the 16-byte MD5 digest)"
    )
    signed = part_url(api, upload, 1, md5=md5.replace("+", "%2B").replace("/", "%2F"))
    assert signed["headers"] == {"Content-MD5": md5}
    assert "content-md5" in query(signed["url"])["X-Amz-SignedHeaders"].split(";")
    batch = api.http.get(
        f"/s3/multipart/{upload['uploadId']}/batch?key={upload['key']}&partNumbers=1"
    )
    assert batch.status_code == 400
    assert batch.json_body["Message"].startswith(
        "batch signing is off because UPLOAD_REQUIRE_CHECKSUM"
    )


def test_companion_params_is_a_form_post_that_stores_the_file(api, s3):
    response = api.http.get(
        "/s3/params?filename=notes.TXT&type=text/plain&metadata[name]=notes.TXT"
        "&metadata[relativePath]=null"
    )
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["key"] == f"put_folder/{body['UUID']}.txt"
    assert (body["method"], body["expires"], body["headers"]) == ("POST", 300, {})
    assert body["fields"]["key"] == body["key"]
    posted = requests.post(body["url"], data=body["fields"], files={"file": b"hi"}, timeout=10)
    # success_action_status=201: S3 answers 201 with XML naming the key, which Uppy reads
    # (moto's XML lacks the key and location; AWS and the strict S3 send them)
    assert posted.status_code == 201
    stored = s3.get_object(Bucket=BUCKET, Key=body["key"])
    assert (stored["Body"].read(), stored["ContentType"]) == (b"hi", "text/plain")


def test_s3_unreachable_makes_multipart_routes_a_503(api, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    response = post_json(api, "/s3/multipart", {"filename": "a.mp4"})
    assert (response.status_code, response.json_body["Code"]) == (503, "ServiceUnavailableError")


def test_list_parts_reads_every_page(s3, monkeypatch):
    # S3 returns at most 1,000 parts a page; the Stubber pins the paging requests exactly.
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)  # outside a request: no stage variables
    svc = app_module.services()
    key = "put_folder/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
    stub = Stubber(svc.multipart._client())  # the one client the services share
    common = {"Bucket": BUCKET, "Key": key, "UploadId": "u1"}
    part = {"ETag": '"e"', "Size": 5 * MiB}
    stub.add_response(
        "list_parts",
        {"Parts": [{"PartNumber": 1, **part}], "IsTruncated": True, "NextPartNumberMarker": 1},
        {**common, "PartNumberMarker": 0},
    )
    stub.add_response(
        "list_parts", {"Parts": [{"PartNumber": 2, **part}], "IsTruncated": False},
        {**common, "PartNumberMarker": 1},
    )  # fmt: skip
    with stub:
        listed = svc.multipart.list_parts(UploadRef(key, "u1"))
    assert [p.number for p in listed] == [1, 2]
    stub.assert_no_pending_responses()


def test_completing_with_a_part_never_uploaded_names_it(api, s3):
    upload = create(api)
    parts = upload_parts(api, upload, PART2)
    response = complete(api, upload, [*parts, {"PartNumber": 3, "ETag": '"abc"'}])
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "part 3 was not uploaded; allowed: the parts S3 holds (1), with their ETags "
        "(GET /s3/multipart/{uploadId})",
    )


def test_completing_an_unknown_upload_is_a_404(api, s3):
    key = f"put_folder/{uuid.uuid4()}"
    response = post_json(
        api, f"/s3/multipart/nosuchupload/complete?key={key}",
        {"parts": [{"PartNumber": 1, "ETag": '"0"'}]},
    )  # fmt: skip
    assert (response.status_code, response.json_body["Code"]) == (404, "NotFoundError")


@pytest.mark.parametrize("body", ['{"filename": "\\udc00.txt"}', '{"type": "text/plain\\ud800"}'])
def test_json_text_that_is_not_unicode_is_a_400_not_a_500(api, body):
    # JSON may escape a lone surrogate; it cannot be encoded into a header or a URL.
    response = api.http.post(
        "/s3/multipart", body=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json_body["Message"].endswith("is not valid Unicode text")


def test_uppys_single_file_policy_asks_s3_for_a_201_with_the_xml_answer(api):
    body = api.http.get("/s3/params?filename=a.png&type=image/png").json_body
    policy = json.loads(base64.b64decode(body["fields"]["policy"]))
    assert body["fields"]["success_action_status"] == "201"
    assert {"success_action_status": "201"} in policy["conditions"]
    plain = api.http.get("/post-url?filename=a.png").json_body
    assert "success_action_status" not in plain["fields"]


def test_a_parts_size_is_signed_as_its_content_length(api, s3):
    upload = create(api)
    ticket = part_url(api, upload, 1, size=str(5 * 1024**2))
    assert ticket["headers"] == {"Content-Length": "5242880"}
    assert query(ticket["url"])["X-Amz-SignedHeaders"] == "content-length;host"


@pytest.mark.parametrize(
    ("size", "limit"),
    [("0", "5368709120"), ("5368709121", "5368709120"), ("-1", "5368709120"),
     ("1e6", "5368709120"), ("9" * 40, "5368709120"), ("10485761", "10485760")],
)  # fmt: skip
def test_a_part_size_that_no_part_can_have_is_refused(api, s3, monkeypatch, size, limit):
    if limit != "5368709120":
        monkeypatch.setenv("UPLOAD_MAX_BYTES", limit)
    upload = create(api)
    response = api.http.get(f"/s3/multipart/{upload['uploadId']}/1?key={upload['key']}&size={size}")
    assert (response.status_code, response.json_body["Message"]) == (400, (
        f"size {size[:20]!r} is not a part's size; allowed: 1 to {limit} bytes, the exact "
        "length of this part"))  # fmt: skip
