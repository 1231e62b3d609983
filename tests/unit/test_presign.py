"""The presign service and the S3 client it is given, checked on the URL itself.

Presigning is offline, so these tests need no S3. What S3 will *accept* is a matter of the
signature, which moto does not verify: these tests pin the URL's shape (host, path, SigV4
query parameters, expiry) that real S3 checks.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from chalicelib.core.presign import Presigner, PutTicket
from chalicelib.core.rules import UploadRequest
from chalicelib.core.settings import Settings
from chalicelib.core.signing import SigV4Backend
from tests.support import LOCAL_AWS_ENV, REAL_AWS_VARS, query

FIXED_ID = "0b6f4a6e-2a53-4d0e-9c39-7f1a4c2b9e11"
SPACE = "put_folder/"  # the key space of the unauthenticated (AUTH_MODE=none) stages


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch):
    for name in REAL_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)


def presigner(**settings_kw) -> Presigner:
    settings = Settings(**{"bucket": "my-uploads", "region": "eu-west-1", **settings_kw})
    backend = SigV4Backend.for_settings(settings, os.environ)
    assert backend is not None
    return Presigner(backend, settings, new_id=lambda: FIXED_ID)


def ticket(**settings_kw) -> PutTicket:
    return presigner(**settings_kw).put_ticket(SPACE)


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
        "expires_in_capped": False,
        "filename": None,
    }


RULES = UploadRequest(
    filename="cat.PNG",
    content_type="image/png",
    size=1234,
    md5="1B2M2Y8AsgTpgAmY7PhCfg==",
    disposition="attachment",
)


def test_every_rule_is_a_signed_header_that_s3_checks():
    # S3 recomputes the signature over these headers' values as received: a PUT that
    # omits one or sends another value fails with 403 SignatureDoesNotMatch, a body whose
    # MD5 differs fails with 400 BadDigest, and a replay onto an existing key fails with
    # 412 PreconditionFailed. moto checks none of this; this test pins what is signed.
    t = presigner(no_overwrite=True).put_ticket(SPACE, RULES)
    params = query(t.url)
    assert params["X-Amz-SignedHeaders"] == (
        "content-disposition;content-length;content-md5;content-type;host;if-none-match;"
        "x-amz-meta-filename"
    )
    assert t.key == f"put_folder/{FIXED_ID}.png"
    assert t.filename == "cat.PNG"
    assert t.headers == {
        "Content-Type": "image/png",
        "Content-Length": "1234",
        "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "Content-Disposition": "attachment; filename=\"cat.PNG\"; filename*=UTF-8''cat.PNG",
        "x-amz-meta-filename": "cat.PNG",
        "If-None-Match": "*",
    }


def policy_of(post):
    return json.loads(base64.b64decode(post.fields["policy"]))


def test_post_policy_pins_key_size_range_type_and_expiry():
    post = presigner(max_bytes=1000, url_expires=120).post_ticket(
        SPACE, RULES._replace(size=None, md5=None)
    )
    policy = policy_of(post)
    assert post.url == "https://my-uploads.s3.eu-west-1.amazonaws.com/"
    assert post.key == f"put_folder/{FIXED_ID}.png"
    assert post.max_bytes == 1000
    assert policy["conditions"][:6] == [
        ["content-length-range", 0, 1000],
        {"Content-Type": "image/png"},
        {"Content-Disposition": "attachment; filename=\"cat.PNG\"; filename*=UTF-8''cat.PNG"},
        {"x-amz-meta-filename": "cat.PNG"},
        {"bucket": "my-uploads"},
        {"key": f"put_folder/{FIXED_ID}.png"},
    ]
    signed_at = datetime.strptime(post.fields["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert policy["expiration"] == post.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # botocore stamps x-amz-date and the expiration from two clock reads.
    drift = post.expires_at - (signed_at + timedelta(seconds=120))
    assert timedelta(0) <= drift <= timedelta(seconds=1)
    assert post.fields["key"] == post.key
    assert post.fields["Content-Type"] == "image/png"
    assert post.fields["x-amz-meta-filename"] == "cat.PNG"


def test_post_policy_without_a_type_accepts_any_and_caps_at_five_gib():
    post = presigner().post_ticket(SPACE)
    assert policy_of(post)["conditions"][:2] == [
        ["content-length-range", 0, 5 * 1024**3],
        ["starts-with", "$Content-Type", ""],
    ]
    assert "Content-Type" not in post.fields


def test_a_ticket_names_its_key_inside_the_callers_space():
    ticket = presigner().put_ticket("put_folder/AIDAALICE/", UploadRequest(filename="a.pdf"))
    assert ticket.key == f"put_folder/AIDAALICE/{FIXED_ID}.pdf"
    assert urlsplit(ticket.url).path == f"/put_folder/AIDAALICE/{FIXED_ID}.pdf"


def test_download_url_is_a_signed_get_that_forces_an_attachment_with_the_name():
    ticket = presigner(url_expires=60).download_ticket(
        FIXED_ID, f"put_folder/{FIXED_ID}.pdf", "ré.pdf"
    )
    params = query(ticket.url)
    assert urlsplit(ticket.url).path == f"/put_folder/{FIXED_ID}.pdf"
    assert (params["X-Amz-SignedHeaders"], params["X-Amz-Expires"]) == ("host", "60")
    assert params["response-content-disposition"] == (
        "attachment; filename=\"r_.pdf\"; filename*=UTF-8''r%C3%A9.pdf"
    )
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert ticket.expires_at == signed_at + timedelta(seconds=60)
    assert ticket.to_response() == {
        "url": ticket.url,
        "expires_in": 60,
        "expires_at": ticket.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_in_capped": False,
        "UUID": FIXED_ID,
        "key": f"put_folder/{FIXED_ID}.pdf",
        "filename": "ré.pdf",
        "checksum": None,
    }
