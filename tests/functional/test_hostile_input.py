"""Hostile input on every route is a 4xx that says what was wrong, never an unnamed 500:
deep or huge JSON, bodies that are not UTF-8, too much metadata, lone surrogates in a
token, filenames over S3's metadata limit; and S3 refusing the service itself is a named
500 that says what to fix."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from chalice.test import Client

from tests.functional.conftest import BUCKET
from tests.support import load_app, unsigned_jwt

UUID = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
KEY = f"put_folder/{UUID}.bin"
JSON = {"Content-Type": "application/json"}
DEEP = "[" * 1000 + "]" * 1000
BODY_ROUTES = ["/s3/multipart", f"/s3/multipart/u1/complete?key={KEY}", "/s3/sign"]


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_deeply_nested_json_is_a_400(api, path):
    response = api.http.post(path, body=DEEP, headers=JSON)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "the body nests more than 4 levels; allowed: the shapes in openapi.yaml",
    )


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415(api, path):
    response = api.http.post(path, body="{}", headers={"Content-Type": "text/plain"})
    message = "Unsupported media type: text/plain"
    assert (response.status_code, response.json_body) == (
        415, {"Code": "UnsupportedMediaType", "Message": message})  # fmt: skip


def test_a_get_is_answered_whatever_content_type_it_names_as_it_has_no_body(api):
    response = api.http.get("/put-url", headers={"Content-Type": "text/html; charset=utf-8"})
    assert (response.status_code, sorted(response.json_body)[:2]) == (200, ["PUT_URL", "UUID"])


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_body_over_a_mebibyte_is_a_400(api, path):
    body = json.dumps({"parts": [{"PartNumber": 1, "ETag": "a" * 100}] * 12_000})
    response = api.http.post(path, body=body, headers=JSON)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        f"the body is {len(body)} bytes; allowed: at most 1048576 bytes of JSON",
    )


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_body_that_is_not_utf8_is_a_400(api, path):
    response = api.http.post(path, body=b'{"filename": "\xff\xfe"}', headers=JSON)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "the body is not UTF-8; allowed: a JSON object in UTF-8",
    )


def test_more_than_fifty_metadata_entries_is_a_400(api):
    metadata = {f"k{n}": "v" for n in range(51)}
    body = json.dumps({"filename": "a.bin", "metadata": metadata})
    response = api.http.post("/s3/multipart", body=body, headers=JSON)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "metadata has 51 entries; allowed: at most 50",
    )


FAT_NAME = "\U0001f600" * 250 + ".png"  # 254 characters: 3,004 bytes percent-encoded


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/put-url?filename={quote(FAT_NAME)}", None),
        ("GET", f"/post-url?filename={quote(FAT_NAME)}", None),
        ("GET", f"/s3/params?filename={quote(FAT_NAME)}", None),
        ("POST", "/s3/multipart", json.dumps({"filename": FAT_NAME})),
    ],
)
def test_a_filename_over_s3s_metadata_limit_is_a_400_naming_it(api, method, path, body):
    response = api.http.request(method, path, body=body or b"", headers=JSON)
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        "filename is 3012 bytes as stored metadata (percent-encoded UTF-8); allowed: at most "
        "2048 bytes, S3's limit for user metadata",
    )


COGNITO_APP = load_app("local-cognito")


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer:UserWarning")
@pytest.mark.parametrize("path", ["/put-url", f"/uploads/{UUID}"])
def test_a_token_whose_subject_is_a_lone_surrogate_is_a_401(s3, path):
    token = unsigned_jwt({"sub": "\ud800", "cognito:username": "x"})
    with Client(COGNITO_APP.app, stage_name="local-cognito") as client:
        response = client.http.get(path, headers={"Authorization": token})
    assert (response.status_code, response.json_body["Code"]) == (401, "UnauthorizedError")


def test_a_missing_bucket_is_a_named_500_that_says_what_to_fix(api, s3, capsys):
    s3.delete_bucket(Bucket=BUCKET)
    capsys.readouterr()
    response = api.http.get(f"/uploads/{UUID}")
    assert (response.status_code, response.json_body) == (
        500,
        {
            "Code": "ConfigurationError",
            "Message": "S3 refused the service's ListObjectsV2 (NoSuchBucket): the bucket "
            "does not exist; check UPLOAD_BUCKET",
        },
    )
    (s3_line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                  if '"s3_error"' in line]  # fmt: skip
    assert s3_line == {"level": "ERROR", "s3_error": "NoSuchBucket",
                       "operation": "ListObjectsV2", "s3_status": 404}  # fmt: skip
