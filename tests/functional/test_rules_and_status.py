"""The rules, the form POST and the status route through the app, with real uploads to moto.

moto does not verify signatures, nor Content-MD5 on a presigned PUT, so it cannot refuse
a PUT whose signed Content-Type, Content-Length, Content-MD5 or Content-Disposition
differs: those are pinned on the URL in tests/unit/test_presign.py and refused by a
strict S3 in tests/live/. moto does honour If-None-Match, so that refusal is shown here.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import BUCKET, verify
from tests.support import query

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PNG_MD5 = base64.b64encode(hashlib.md5(PNG).digest()).decode()  # noqa: S324 (S3's checksum)


@pytest.fixture
def strict(monkeypatch):
    """The prod rules: images and PDFs up to 10 MiB, a checksum required, no overwrite."""
    monkeypatch.setenv("UPLOAD_ALLOWED_TYPES", "image/*,application/pdf")
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "10485760")
    monkeypatch.setenv("UPLOAD_REQUIRE_CHECKSUM", "true")
    monkeypatch.setenv("UPLOAD_NO_OVERWRITE", "true")


def png_ticket(api, **extra):
    params = {"filename": "cat.PNG", "content_type": "image/png", "size": str(len(PNG)),
              "md5": PNG_MD5, **extra}  # fmt: skip
    response = api.http.get("/put-url?" + "&".join(f"{k}={v}" for k, v in params.items()))
    return response


def test_compliant_upload_with_every_rule_is_stored(api, s3, strict):
    response = png_ticket(api)
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["key"] == f"put_folder/{body['UUID']}.png"
    assert body["filename"] == "cat.PNG"
    assert body["headers"] == {
        "Content-Type": "image/png",
        "Content-Length": str(len(PNG)),
        "Content-MD5": PNG_MD5,
        "x-amz-meta-filename": "cat.PNG",
        "If-None-Match": "*",
    }
    put = requests.put(body["PUT_URL"], data=PNG, headers=body["headers"], timeout=10)
    assert put.status_code == 200
    stored = s3.get_object(Bucket=BUCKET, Key=body["key"])
    assert (stored["Body"].read(), stored["ContentType"]) == (PNG, "image/png")
    assert stored["Metadata"] == {"filename": "cat.PNG"}


def test_replaying_a_url_cannot_overwrite(api, s3, strict):
    body = png_ticket(api).json_body
    first = requests.put(body["PUT_URL"], data=PNG, headers=body["headers"], timeout=10)
    replay = requests.put(body["PUT_URL"], data=PNG, headers=body["headers"], timeout=10)
    assert (first.status_code, replay.status_code) == (200, 412)
    assert "<Code>PreconditionFailed</Code>" in replay.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("content_type=text/html&size=5&md5=" + PNG_MD5,
         "content_type 'text/html' is not allowed; allowed: image/*, application/pdf (a "
         "wildcard admits the types known by their bytes, never a page, script or program)"),
        ("content_type=image/png&size=10485761&md5=" + PNG_MD5,
         "size 10485761 is too large; allowed: 0 to 10485760"),
        ("content_type=image/png&size=5",
         "a checksum of the file's bytes is required (UPLOAD_REQUIRE_CHECKSUM is on); "
         "allowed: sha256 (the base64 of the 32-byte SHA-256 digest, which browsers compute "
         "with crypto.subtle.digest) or md5 (the base64 of the 16-byte MD5 digest), or both"),
        ("content_type=image/png&size=5&md5=" + PNG_MD5 + "&size=6",
         "parameter 'size' was given 2 times; give it once"),
    ],
)  # fmt: skip
def test_violations_are_a_400_that_says_what_is_allowed(api, strict, query, message):
    response = api.http.get(f"/put-url?{query}")
    assert (response.status_code, response.json_body) == (
        400,
        {"Code": "BadRequestError", "Message": message},
    )


def test_form_post_within_the_range_is_stored(api, s3, monkeypatch):
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "1000")
    body = api.http.get("/post-url?filename=doc.PDF&content_type=application/pdf").json_body
    assert body["key"] == f"put_folder/{body['UUID']}.pdf"
    assert (body["method"], body["max_bytes"]) == ("POST", 1000)
    posted = requests.post(
        body["url"], data=body["fields"], files={"file": ("doc.PDF", b"%PDF-1.7 hi")}, timeout=10
    )
    assert posted.status_code == 204
    stored = s3.get_object(Bucket=BUCKET, Key=body["key"])
    assert (stored["Body"].read(), stored["ContentType"]) == (b"%PDF-1.7 hi", "application/pdf")
    assert stored["Metadata"] == {"filename": "doc.PDF"}


def test_form_post_is_refused_when_rules_need_signed_headers(api, strict):
    response = api.http.get("/post-url?content_type=image/png")
    assert response.status_code == 400
    assert response.json_body["Message"].startswith("browser-form uploads are off because")


def test_status_is_pending_until_the_upload_lands_then_reports_it(api, s3, strict):
    body = png_ticket(api).json_body
    before = api.http.get(f"/uploads/{body['UUID']}")
    assert (before.status_code, before.json_body) == (
        200,
        {"UUID": body["UUID"], "status": "pending"},
    )
    requests.put(body["PUT_URL"], data=PNG, headers=body["headers"], timeout=10)
    after = api.http.get(f"/uploads/{body['UUID']}").json_body
    head = s3.head_object(Bucket=BUCKET, Key=body["key"])
    assert after == {
        "UUID": body["UUID"],
        "status": "scanning",  # landed; the `local` stage's verdict awaits a malware scan
        "key": body["key"],
        "size": len(PNG),
        "content_type": "image/png",
        "etag": head["ETag"],
        "last_modified": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "filename": "cat.PNG",
        "checksum": None,  # moto stores no checksum from a presigned PUT
    }


def test_status_finds_uploads_without_an_extension(api, s3):
    body = api.http.get("/put-url").json_body
    requests.put(body["PUT_URL"], data=b"abc", timeout=10)
    after = api.http.get(f"/uploads/{body['UUID']}").json_body
    assert (after["status"], after["key"], after["size"]) == ("scanning", body["key"], 3)
    assert after["filename"] is None


def test_download_url_fetches_the_bytes_as_an_attachment_named_like_the_original(api, s3):
    name = 'Relevé 2026 "final".pdf'
    body = api.http.get("/put-url?" + urlencode({"filename": name})).json_body
    assert body["headers"] == {"x-amz-meta-filename": "Relev%C3%A9%202026%20%22final%22.pdf"}
    requests.put(body["PUT_URL"], data=b"%PDF-1.7 x", headers=body["headers"], timeout=10)
    assert verify(api, body["key"])["verdict"]["reason"] is None

    response = api.http.get(f"/uploads/{body['UUID']}/download-url")
    assert response.status_code == 200, response.body
    ticket = response.json_body
    signed_at = datetime.strptime(query(ticket["url"])["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    assert ticket == {
        "url": ticket["url"],
        "expires_in": 300,
        "expires_at": (signed_at + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_in_capped": False,
        "UUID": body["UUID"],
        "key": body["key"],
        "filename": name,
        "checksum": None,
    }
    disposition = (
        'attachment; filename="Relev_ 2026 _final_.pdf"; '
        "filename*=UTF-8''Relev%C3%A9%202026%20%22final%22.pdf"
    )
    assert query(ticket["url"])["response-content-disposition"] == disposition
    downloaded = requests.get(ticket["url"], timeout=10)
    assert (downloaded.status_code, downloaded.content) == (200, b"%PDF-1.7 x")
    assert downloaded.headers["Content-Disposition"] == disposition


def test_download_url_without_a_filename_is_a_plain_attachment(api, s3):
    body = api.http.get("/put-url").json_body
    requests.put(body["PUT_URL"], data=b"abc", timeout=10)
    assert verify(api, body["key"])["verdict"]["reason"] is None
    ticket = api.http.get(f"/uploads/{body['UUID']}/download-url").json_body
    assert query(ticket["url"])["response-content-disposition"] == "attachment"
    assert (ticket["key"], ticket["filename"]) == (body["key"], None)
    assert requests.get(ticket["url"], timeout=10).content == b"abc"


def test_download_url_for_nothing_stored_is_a_404(api, s3):
    upload_id = api.http.get("/put-url").json_body["UUID"]  # issued, never uploaded
    response = api.http.get(f"/uploads/{upload_id}/download-url")
    assert (response.status_code, response.json_body) == (
        404,
        {
            "Code": "NotFoundError",
            "Message": f"no upload {upload_id} is stored for you; allowed: the UUID of an "
            "upload you made, once its PUT or POST has succeeded",
        },
    )


@pytest.mark.parametrize(
    "upload_id", ["not-a-uuid", "..%2F..%2Fetc", "3F2B8C1E-9D4A-4E6B-8F7A-1C2D3E4F5A6B", "x" * 500]
)
@pytest.mark.parametrize("suffix", ["", "/download-url"])
def test_malformed_upload_id_is_a_400(api, upload_id, suffix):
    response = api.http.get(f"/uploads/{upload_id}{suffix}")
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequestError"
    assert "is not valid; allowed: a UUID as returned by /put-url" in response.json_body["Message"]


def test_s3_unreachable_makes_status_a_503_not_a_500(api, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: refused
    response = api.http.get(f"/uploads/{uuid.uuid4()}")
    assert (response.status_code, response.json_body) == (
        503,
        {
            "Code": "ServiceUnavailableError",
            "Message": "S3 could not be reached (EndpointConnectionError); try again shortly",
        },
    )


query_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(
    max_examples=settings().max_examples * 3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    filename=query_text,
    content_type=query_text,
    size=query_text,
    md5=query_text,
    extra=st.dictionaries(st.sampled_from(["filename", "size", "x", "disposition"]), query_text),
)
def test_no_input_gives_a_500_or_a_key_outside_the_prefix(
    api, filename, content_type, size, md5, extra
):
    params = [("filename", filename), ("content_type", content_type), ("size", size),
              ("md5", md5), *extra.items()]  # fmt: skip
    response = api.http.get("/put-url?" + urlencode(params))
    assert response.status_code in (200, 400), response.body
    if response.status_code == 200:
        body = response.json_body
        assert re.fullmatch(rf"put_folder/{body['UUID']}(\.[a-z0-9]{{1,16}})?", body["key"])
        assert urlsplit(body["PUT_URL"]).path == f"/{BUCKET}/{body['key']}"
    else:
        assert response.json_body["Code"] == "BadRequestError"
