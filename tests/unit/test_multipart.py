"""The multipart rules: part arithmetic, which keys and ids are accepted, part lists."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from chalicelib.core.errors import StorageUnavailable, UploadRejected
from chalicelib.core.presign import Presigner
from chalicelib.core.rules import UploadRequest
from chalicelib.core.settings import Settings
from chalicelib.core.signing import SigV4Backend
from chalicelib.multipart.companion import (
    owned_key,
    parse_complete,
    parse_multipart_id,
    parse_part_numbers,
)
from chalicelib.multipart.service import (
    MAX_PARTS,
    MIN_PART_SIZE,
    CompletedPart,
    Multipart,
    UploadRef,
    max_part_count,
)
from tests.support import query

SETTINGS = Settings(bucket="my-uploads", region="eu-west-1")
ID = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    ("limit", "parts"),
    [(1, 1), (MIN_PART_SIZE, 1), (MIN_PART_SIZE + 1, 2), (10 * MIN_PART_SIZE, 10),
     (MAX_PARTS * MIN_PART_SIZE, MAX_PARTS), (5 * 1024**4, MAX_PARTS)],
)  # fmt: skip
def test_part_count_stops_where_a_file_within_the_limit_must_have_ended(limit, parts):
    assert max_part_count(limit) == parts


@pytest.mark.parametrize(
    ("space", "key"),
    [("put_folder/", f"put_folder/{ID}"), ("put_folder/", f"put_folder/{ID}.mp4"),
     ("put_folder/AIDA_3Ax/", f"put_folder/AIDA_3Ax/{ID}.jpg")],
)  # fmt: skip
def test_keys_of_the_services_shape_in_the_space_are_accepted(space, key):
    assert owned_key(space, key) == key


@pytest.mark.parametrize(
    "key",
    [None, "", f"put_folder/{ID}.MP4", f"put_folder/{ID}.", f"put_folder/x/{ID}",
     f"put_folder/{ID.upper()}", f"put_folder/{ID}\n", f"put_folder/{ID}/../../x",
     f"PUT_FOLDER/{ID}", f"put_folder/{ID}.{'a' * 17}"],
)  # fmt: skip
def test_anything_else_is_not_the_callers_key(key):
    with pytest.raises(UploadRejected, match="is not an upload key issued to you"):
        owned_key("put_folder/", key)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [("abc", "abc"), ("VXBsb2FkIElE--", "VXBsb2FkIElE--"), ("a%2Bb%2Fc%3D", "a+b/c=")],
)
def test_upload_ids_are_decoded_once(raw, decoded):
    assert parse_multipart_id(raw) == decoded


@pytest.mark.parametrize("raw", ["", "a b", "a%00b", "x" * 1025, "a?b", "a&b=c"])
def test_malformed_upload_ids_are_refused(raw):
    with pytest.raises(UploadRejected, match="is not valid; allowed: the uploadId returned by"):
        parse_multipart_id(raw)


def test_part_numbers_are_deduplicated_and_sorted():
    assert parse_part_numbers("3, 1,3,2", SETTINGS) == [1, 2, 3]


@pytest.mark.parametrize("raw", [None, "", ",".join(str(n) for n in range(1, 102))])
def test_a_batch_lists_1_to_100_part_numbers(raw):
    with pytest.raises(UploadRejected) as exc:
        parse_part_numbers(raw, SETTINGS)
    assert str(exc.value) == (
        "partNumbers must list 1 to 100 part numbers separated by commas, like '1,2,3'"
    )


def test_a_complete_body_keeps_exactly_number_and_etag():
    body = {"parts": [{"PartNumber": 1, "ETag": '"a"', "Size": 5}, {"PartNumber": 3, "ETag": "b"}]}
    assert parse_complete(body) == [CompletedPart(1, '"a"'), CompletedPart(3, "b")]


@pytest.mark.parametrize(
    "body",
    [None, [], {"parts": "1"}, {"parts": [1]}, {"parts": [{"PartNumber": True, "ETag": "a"}]},
     {"parts": [{"PartNumber": 1, "ETag": ""}]},
     {"parts": [{"PartNumber": 1, "ETag": "a"}, {"PartNumber": 1, "ETag": "a"}]}],
)  # fmt: skip
def test_malformed_part_lists_are_refused(body):
    with pytest.raises(UploadRejected):
        parse_complete(body)


def test_a_part_url_signs_exactly_that_part_and_its_md5(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    backend = SigV4Backend.for_settings(SETTINGS, os.environ)
    assert backend is not None
    presigner = Presigner(backend, SETTINGS)
    md5 = {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}
    ticket = presigner.part_ticket(f"put_folder/{ID}", "up+load/id", 42, md5)
    url = urlsplit(ticket.url)
    params = query(ticket.url)
    assert (url.netloc, url.path) == ("my-uploads.s3.eu-west-1.amazonaws.com", f"/put_folder/{ID}")
    assert (params["partNumber"], params["uploadId"]) == ("42", "up+load/id")
    assert params["X-Amz-SignedHeaders"] == "content-md5;host"
    assert (ticket.expires_in, ticket.headers) == (300, {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})


def multipart_on(clock, client) -> Multipart:
    backend = SigV4Backend.for_settings(SETTINGS, {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                                                   "AWS_SECRET_ACCESS_KEY": "secret"})  # fmt: skip
    assert backend is not None
    return Multipart(lambda: client, SETTINGS, Presigner(backend, SETTINGS), clock=clock)


class NoS3:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name):
        self.calls.append(name)
        raise AssertionError(f"S3 called: {name}")


def test_a_multipart_creates_quota_work_and_its_s3_call_share_one_28_s_deadline():
    # The quota's reservation may take its whole 10 s budget, then a client build 5 s:
    # 15 + 14 s (the S3 call's worst case) > 28, so the call is not started (a 503).
    now = [0.0]

    def reserve(upload_id: str, size: int, lifetime: int) -> None:
        now[0] += 15.0

    s3 = NoS3()
    multipart = multipart_on(lambda: now[0], s3)
    with pytest.raises(StorageUnavailable, match="within API Gateway's 29 s"):
        multipart.create("put_folder/", UploadRequest(), reserve=reserve)
    assert (now[0], s3.calls) == (15.0, [])


def test_an_abort_leaves_its_quota_release_what_is_left_of_the_routes_budget():
    now = [0.0]

    class SlowAbort:
        def abort_multipart_upload(self, **_: str) -> dict[str, str]:
            now[0] += 20.0
            return {}

    multipart = multipart_on(lambda: now[0], SlowAbort())
    assert multipart.abort(UploadRef(f"put_folder/{ID}", "u1")) == 8.0  # of 28 s
