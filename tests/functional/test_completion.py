"""Completing a multipart upload: S3 is sent its own listing, a retry answers as the first
completion did, and the route stays within API Gateway's 29 s however slow S3 is."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from botocore.stub import Stubber

from chalicelib.core.errors import StorageUnavailable
from chalicelib.multipart.service import CompletedPart, Multipart, UploadRef, multipart_etag
from tests.functional.conftest import BUCKET, app_module
from tests.functional.test_multipart import PART1, PART2, complete, create, upload_parts

MiB = 1024**2
KEY = "put_folder/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b.bin"
ETAG1, ETAG2 = '"' + "a" * 32 + '"', '"' + "b" * 32 + '"'


def test_completion_sends_s3_its_own_etags_and_the_summed_size(s3, monkeypatch):
    # GIVEN two parts that S3 lists with its ETags (quoted) and sizes
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)  # outside a request: no stage variables
    svc = app_module.services()
    lister, completer = Stubber(svc.multipart._client()), Stubber(svc.multipart._completer())
    parts = [{"PartNumber": 1, "ETag": ETAG1, "Size": 5 * MiB},
             {"PartNumber": 2, "ETag": ETAG2, "Size": 7}]  # fmt: skip
    common = {"Bucket": BUCKET, "Key": KEY, "UploadId": "u1"}
    lister.add_response("list_parts", {"Parts": parts, "IsTruncated": False},
                        {**common, "PartNumberMarker": 0})  # fmt: skip
    # THEN the completion names S3's ETags, not the client's spelling, and the total size
    completer.add_response(
        "complete_multipart_upload",
        {"ETag": '"c-2"', "Location": "l", "Key": KEY, "Bucket": BUCKET},
        {**common, "MpuObjectSize": 5 * MiB + 7,
         "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": ETAG1},
                                       {"PartNumber": 2, "ETag": ETAG2}]}},
    )  # fmt: skip
    # WHEN the client lists the same parts with unquoted ETags
    with lister, completer:
        done = svc.multipart.complete(
            "put_folder/",
            UploadRef(KEY, "u1"),
            [CompletedPart(1, ETAG1.strip('"')), CompletedPart(2, ETAG2.strip('"'))],
        )
    assert (done.etag, done.upload_id) == ('"c-2"', "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b")
    lister.assert_no_pending_responses()
    completer.assert_no_pending_responses()


def test_a_retried_completion_answers_exactly_as_the_first(api, s3):
    upload = create(api)
    parts = upload_parts(api, upload, PART1, PART2)
    first = complete(api, upload, parts)
    assert first.status_code == 200
    again = complete(api, upload, parts)  # the first answer was lost; the client retries
    assert (again.status_code, {k: again.json_body[k] for k in ("key", "etag", "UUID")}) == (
        200,
        {k: first.json_body[k] for k in ("key", "etag", "UUID")},
    )


def test_a_retried_completion_with_other_parts_is_still_a_404(api, s3):
    upload = create(api)
    parts = upload_parts(api, upload, PART1, PART2)
    assert complete(api, upload, parts).status_code == 200
    other = [parts[0], {"PartNumber": 2, "ETag": ETAG2}]
    response = complete(api, upload, other)
    assert (response.status_code, response.json_body["Code"]) == (404, "NotFoundError")


def test_the_multipart_etag_is_the_one_s3_gives():
    # The strict S3 (LocalStack) answered "cb8d...c264-1" for one part of b"x" * 10.
    part = f'"{hashlib.md5(b"x" * 10).hexdigest()}"'  # noqa: S324 (S3's ETag)
    assert multipart_etag([part]) == '"cb8d7289925309a05b2db09b7709c264-1"'
    assert multipart_etag(["not-an-md5"]) == ""


def test_listing_stops_before_a_page_that_could_overrun_api_gateway(s3, monkeypatch):
    # GIVEN a clock that says 7 s pass between reads: each call may take the worst case
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)
    svc = app_module.services()
    clock = itertools.count(0, 7).__next__
    multipart = Multipart(svc.multipart._client, svc.settings, svc.presigner, clock=clock)
    stub = Stubber(svc.multipart._client())
    common = {"Bucket": BUCKET, "Key": KEY, "UploadId": "u1"}
    for page in range(3):
        stub.add_response(
            "list_parts",
            {"Parts": [{"PartNumber": page + 1, "ETag": ETAG1, "Size": 5 * MiB}],
             "IsTruncated": True, "NextPartNumberMarker": page + 1},
            {**common, "PartNumberMarker": page},
        )  # fmt: skip
    # WHEN the parts are listed: reads at 7 s (+14 s worst case = 21) and 14 s (= 28 s)
    # fit the 28 s budget; a third page at 21 s (+14 = 35 s) does not
    with stub, pytest.raises(StorageUnavailable) as raised:
        multipart.list_parts(UploadRef(KEY, "u1"))
    assert str(raised.value) == (
        "S3 is answering too slowly to finish within API Gateway's 29 s; try again shortly"
    )
    assert len(stub._queue) == 1  # type: ignore[attr-defined]  # page 3: never requested
