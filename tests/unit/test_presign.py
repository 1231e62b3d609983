"""The presign service and the S3 client it is given, checked on the URL itself.

Presigning is offline, so these tests need no S3. What S3 will *accept* is a matter of the
signature, which moto does not verify: these tests pin the URL's shape (host, path, SigV4
query parameters, expiry) that real S3 checks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from chalicelib.presign import Presigner, PutTicket
from chalicelib.s3 import make_s3_client
from chalicelib.settings import Settings
from tests.support import LOCAL_AWS_ENV, REAL_AWS_VARS, query

FIXED_ID = "0b6f4a6e-2a53-4d0e-9c39-7f1a4c2b9e11"


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch):
    for name in REAL_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def ticket(**settings_kw) -> PutTicket:
    settings = Settings(**{"bucket": "my-uploads", "region": "eu-west-1", **settings_kw})
    return Presigner(make_s3_client(settings), settings, new_id=lambda: FIXED_ID).put_ticket()


def test_ticket_names_the_key_under_the_prefix():
    t = ticket(prefix="put_folder/")
    assert (t.upload_id, t.key, t.headers, t.expires_in) == (
        FIXED_ID,
        f"put_folder/{FIXED_ID}",
        {},
        300,
    )


def test_url_is_sigv4_query_signed_with_only_the_host_header():
    params = query(ticket().url)
    assert set(params) == {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    }
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    # Only `host` is signed, so a plain `curl -X PUT --upload-file f "$URL"` is accepted.
    assert params["X-Amz-SignedHeaders"] == "host"
    assert params["X-Amz-Expires"] == "300"
    day = params["X-Amz-Date"][:8]
    assert params["X-Amz-Credential"] == f"test/{day}/eu-west-1/s3/aws4_request"
    assert len(params["X-Amz-Signature"]) == 64


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu-west-1", "my-uploads.s3.eu-west-1.amazonaws.com"),
        # Not the global s3.amazonaws.com, which 307-redirects requests for new buckets.
        ("us-east-1", "my-uploads.s3.us-east-1.amazonaws.com"),
        ("ap-southeast-2", "my-uploads.s3.ap-southeast-2.amazonaws.com"),
    ],
)
def test_real_aws_urls_use_the_buckets_regional_virtual_host(region, host):
    parts = urlsplit(ticket(region=region).url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", host, f"/put_folder/{FIXED_ID}")
    assert query(ticket(region=region).url)["X-Amz-Credential"].split("/")[2] == region


def test_bucket_with_dots_uses_path_style_so_tls_matches():
    parts = urlsplit(ticket(bucket="my.uploads").url)
    assert (parts.netloc, parts.path) == (
        "s3.eu-west-1.amazonaws.com",
        f"/my.uploads/put_folder/{FIXED_ID}",
    )


def test_custom_endpoint_gets_path_style_urls():
    parts = urlsplit(ticket(endpoint_url="http://127.0.0.1:4566").url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "127.0.0.1:4566",
        f"/my-uploads/put_folder/{FIXED_ID}",
    )


@pytest.mark.parametrize("region", ["us-east-1", "us-west-1", "eu-west-1", "sa-east-1"])
def test_never_legacy_sigv2_even_where_botocore_would_default_to_it(region):
    params = query(ticket(region=region).url)
    assert "AWSAccessKeyId" not in params
    assert "Signature" not in params
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"


def test_session_token_is_signed_into_the_url(monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok/en+=")
    assert query(ticket().url)["X-Amz-Security-Token"] == "tok/en+="


@pytest.mark.parametrize("expires", [1, 120, 604800])
def test_expires_at_is_exactly_when_s3_stops_accepting_the_url(expires):
    t = ticket(url_expires=expires)
    params = query(t.url)
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert params["X-Amz-Expires"] == str(expires)
    assert t.expires_in == expires
    assert t.expires_at == signed_at + timedelta(seconds=expires)
    assert abs(signed_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_response_keeps_the_original_contract_and_adds_the_new_fields():
    t = PutTicket(
        upload_id=FIXED_ID,
        key=f"put_folder/{FIXED_ID}",
        url="https://example.invalid/put",
        expires_in=300,
        expires_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert t.to_response() == {
        "PUT_URL": "https://example.invalid/put",
        "UUID": FIXED_ID,
        "key": f"put_folder/{FIXED_ID}",
        "method": "PUT",
        "headers": {},
        "expires_in": 300,
        "expires_at": "2026-01-02T03:04:05Z",
        "filename": None,
    }
