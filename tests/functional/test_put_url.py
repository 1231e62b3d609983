from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests

from tests.functional.conftest import BUCKET, app_module
from tests.support import query


def get_put_url(api):
    response = api.http.get("/put-url")
    assert response.status_code == 200, response.body
    return response.json_body


def test_put_url_returns_the_original_fields_and_the_new_ones(api, s3_endpoint):
    body = get_put_url(api)
    upload_id = body["UUID"]
    assert uuid.UUID(upload_id).version == 4
    assert str(uuid.UUID(upload_id)) == upload_id
    url = urlsplit(body["PUT_URL"])
    assert f"{url.scheme}://{url.netloc}" == s3_endpoint
    assert url.path == f"/{BUCKET}/put_folder/{upload_id}"
    signed_at = datetime.strptime(query(body["PUT_URL"])["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    expected_expiry = (signed_at + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body == {
        "PUT_URL": body["PUT_URL"],
        "UUID": upload_id,
        "key": f"put_folder/{upload_id}",
        "method": "PUT",
        "headers": {},
        "expires_in": 300,
        "expires_at": expected_expiry,
        "expires_in_capped": False,
        "filename": None,
    }


def test_bytes_put_to_the_url_are_stored_at_the_key(api, s3):
    body = get_put_url(api)
    payload = bytes(range(256)) * 1000
    # Exactly what `curl -X PUT --upload-file f "$URL"` sends: no extra headers.
    stored = requests.put(body["PUT_URL"], data=payload, timeout=10)
    assert stored.status_code == 200
    obj = s3.get_object(Bucket=BUCKET, Key=body["key"])
    assert obj["Body"].read() == payload
    assert obj["ETag"] == stored.headers["ETag"]


def test_issuing_a_url_writes_nothing_to_the_bucket(api, s3):
    for _ in range(3):
        get_put_url(api)
    # The original service wrote an empty placeholder before signing; this one does not.
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_each_call_gets_a_new_uuid_and_key(api):
    bodies = [get_put_url(api) for _ in range(20)]
    assert len({b["UUID"] for b in bodies}) == 20
    assert len({b["key"] for b in bodies}) == 20


def test_the_s3_client_is_built_once_and_reused_across_requests(api):
    get_put_url(api)
    first = app_module.services()
    get_put_url(api)
    assert app_module.services() is first
    assert app_module.services.cache_info().misses == 1


def test_put_url_carries_cors_headers(api):
    response = api.http.get("/put-url", headers={"Origin": "https://app.example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_missing_region_is_a_clear_error_in_the_body(api, monkeypatch):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    response = api.http.get("/put-url")
    assert response.status_code == 500
    assert response.json_body == {
        "Code": "ConfigurationError",
        "Message": "AWS_REGION is not set; set AWS_REGION or AWS_DEFAULT_REGION to the "
        "bucket's region, like 'eu-west-1'",
    }


def test_invalid_setting_is_reported_and_fixed_without_a_cold_start(api, monkeypatch):
    monkeypatch.setenv("UPLOAD_BUCKET_REGION", "nowhere")
    response = api.http.get("/put-url")
    assert (response.status_code, response.json_body) == (
        500,
        {
            "Code": "ConfigurationError",
            "Message": "UPLOAD_BUCKET_REGION='nowhere' is not an AWS region; allowed: names "
            "like 'eu-west-1'",
        },
    )
    # A failed build is not cached: once the setting is fixed, the next request works.
    monkeypatch.delenv("UPLOAD_BUCKET_REGION")
    assert api.http.get("/put-url").status_code == 200


def test_a_url_is_capped_to_the_signing_credentials_lifetime_and_says_so(api, monkeypatch):
    expiry = datetime.now(UTC) + timedelta(seconds=100)
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiry.isoformat())
    body = api.http.get("/put-url").json_body
    assert body["expires_in_capped"] is True
    assert 95 <= body["expires_in"] <= 100
    assert query(body["PUT_URL"])["X-Amz-Expires"] == str(body["expires_in"])
    assert body["expires_at"] <= expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_expired_signing_credentials_are_a_503_that_says_so(api, monkeypatch):
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z")
    response = api.http.get("/put-url")
    assert (response.status_code, response.json_body) == (
        503,
        {
            "Code": "ServiceUnavailableError",
            "Message": "the service's AWS credentials have expired and could not be renewed; "
            "try again shortly",
        },
    )
