"""What landed is checked: the verifier (S3's "Object Created" event, through Chalice's
local invocation), its verdict in S3's tags, quarantine, the app event, the webhook, the
status and download routes, and claims.

S3, EventBridge, SQS and SSM are moto's server over HTTP; an app subscribes to the
verdicts as it would in AWS, with an EventBridge rule that targets an SQS queue.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlencode

import boto3
import pytest
import requests
from chalice.test import Client

from chalicelib.verifier.verify import stored_header_problem
from chalicelib.verifier.webhook import Webhook
from tests.functional.conftest import BUCKET, app_module, put, s3_event, verify
from tests.support import free_port, load_app, png, subscribe, unsigned_jwt

HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"


@pytest.fixture
def subscriber(s3, s3_endpoint):
    """An app's subscription to the verdicts (a rule into a queue)."""
    return subscribe(s3_endpoint, "app-verdicts")


def tags_of(s3, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}


def test_a_real_png_is_verified_tagged_published_and_downloadable(api, s3, subscriber):
    body = put(api, png(), content_type="image/png", filename="dot.png")
    answer = verify(api, body["key"])
    etag = hashlib.md5(png(), usedforsecurity=False).hexdigest()
    assert answer == {"verdict": {
        "UUID": body["UUID"], "key": body["key"], "principal": None, "size": len(png()),
        "content_type": "image/png", "etag": etag, "checksum": None, "reason": None,
        "scan": "NO_THREATS_FOUND"}}  # fmt: skip
    # The `local` stage scans for malware: GuardDuty's tag is there too.
    assert tags_of(s3, body["key"]) == {
        "upload-status": "verified",
        "upload-etag": etag,
        "upload-type": "image/png",
        "GuardDutyMalwareScanStatus": "NO_THREATS_FOUND",
    }
    status = api.http.get(f"/uploads/{body['UUID']}").json_body
    assert (status["status"], status["key"]) == ("verified", body["key"])
    assert api.http.get(f"/uploads/{body['UUID']}/download-url").status_code == 200
    (event,) = subscriber()
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "presigned-upload", "Upload Verified", answer["verdict"])  # fmt: skip
    assert event["resources"] == [f"arn:aws:s3:::{BUCKET}/{body['key']}"]


def test_html_declared_as_png_is_rejected_quarantined_and_never_downloadable(api, s3, subscriber):
    body = put(api, HTML, content_type="image/png")
    reason = "markup: the content is an HTML or SVG or XML document but declared image/png"
    assert verify(api, body["key"])["verdict"]["reason"] == reason
    # Moved: out of the caller's folder, into quarantine with the reason.
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=body["key"])
    quarantined = f"quarantine/{body['key']}"
    assert s3.get_object(Bucket=BUCKET, Key=quarantined)["Body"].read() == HTML
    assert tags_of(s3, quarantined) == {"upload-status": "rejected", "upload-reason": reason}
    assert api.http.get(f"/uploads/{body['UUID']}").json_body == {
        "UUID": body["UUID"], "status": "rejected", "reason": reason}  # fmt: skip
    download = api.http.get(f"/uploads/{body['UUID']}/download-url")
    assert (download.status_code, download.json_body["Code"]) == (404, "NotFoundError")
    (event,) = subscriber()
    assert (event["detail-type"], event["detail"]["reason"]) == ("Upload Rejected", reason)


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [(b"GIF89a" + b"\0" * 20, "image/png",
      "type-mismatch: the content is image/gif but declared image/png"),
     (b"plain words, no signature", "image/png",
      "type-mismatch: the content has no image/png signature"),
     (b"  \xef\xbb\xbf<svg onload=alert(1)>", "text/plain",
      "markup: the content is an HTML or SVG or XML document but declared text/plain"),
     (b"<!-- x --><img src=x onerror=alert(1)>", "application/octet-stream",
      "markup: the content is an HTML or SVG or XML document but declared "
      "application/octet-stream"),
     (b" " * 2000 + b"<DIV><script>x</script>", "text/csv",
      "markup: the content is an HTML or SVG or XML document but declared text/csv")],
)  # fmt: skip
def test_content_that_is_not_its_declared_type_is_rejected(api, s3, data, content_type, reason):
    body = put(api, data, content_type=content_type)
    assert verify(api, body["key"])["verdict"]["reason"] == reason


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(png(), "image/png"), (b"%PDF-1.7\n", "application/pdf"), (b"hello", "text/plain"),
     (b"\x00\x01 unknown binary", None), (b"", "text/plain"), (HTML, "text/html")],
)  # fmt: skip
def test_content_that_is_its_declared_type_or_unknown_binary_is_verified(
    api, s3, data, content_type
):
    body = put(api, data, **({"content_type": content_type} if content_type else {}))
    assert verify(api, body["key"])["verdict"]["reason"] is None


@pytest.mark.parametrize(
    ("params", "reason"),
    [({"filename": "invoice.html", "content_type": "image/png"},
      "extension-mismatch: a .html name holds image/png"),
     ({"filename": "logo.svg"}, "extension-mismatch: a .svg name holds application/octet-stream")],
)  # fmt: skip
def test_a_name_that_would_open_as_a_page_must_hold_that_type(api, s3, params, reason):
    # A real PNG, but saved under its download name it would open as HTML or SVG.
    body = put(api, png(), **params)
    assert verify(api, body["key"])["verdict"]["reason"] == reason


HTA = (
    b'<HTA:APPLICATION ID="x" WINDOWSTATE="minimize">\n<script language="VBScript">\n'
    b'CreateObject("WScript.Shell").Run "calc"\n</script>'
)


def test_an_hta_is_markup_whatever_type_it_claims(api, s3):
    body = put(api, HTA, content_type="text/plain")
    reason = "markup: the content is an HTML or SVG or XML document but declared text/plain"
    assert verify(api, body["key"])["verdict"]["reason"] == reason


@pytest.mark.parametrize(
    ("data", "name"),
    [(b'CreateObject("WScript.Shell").Run "calc"', "invoice.hta"),
     (b"MIME-Version: 1.0\r\nContent-Type: multipart/related", "page.mht"),
     (b"@echo off\r\ncalc.exe", "invoice.bat."), (b"MsgBox 1", "run.vbs")],
)  # fmt: skip
def test_a_download_name_that_runs_on_a_desktop_is_rejected_though_added_unsigned(
    api, s3, data, name
):
    # GIVEN a URL issued with no filename (signing refuses these names), and an uploader
    # who adds the name as metadata S3 stores without its being signed
    body = api.http.get("/put-url?content_type=image/png").json_body
    headers = {**body["headers"], "x-amz-meta-filename": name}
    assert requests.put(body["PUT_URL"], data=data, headers=headers, timeout=10).status_code == 200
    # THEN the verifier rejects it by its name
    ext = name.rstrip(".").rsplit(".", 1)[1]
    assert verify(api, body["key"])["verdict"]["reason"] == (
        f"extension-not-allowed: a .{ext} name runs as a program")  # fmt: skip


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [("Content-Disposition", 'attachment; filename="invoice.pdf"',
      "unexpected-header: Content-Disposition is not the one the service signs"),
     ("Content-Encoding", "gzip", "unexpected-header: Content-Encoding is set but the service "
                                  "sets none"),
     ("Cache-Control", "public, max-age=31536000",
      "unexpected-header: Cache-Control is set but the service sets none"),
     ("x-amz-meta-owner", "admin", "unexpected-header: x-amz-meta-owner is not one the "
                                   "service sets"),
     ("x-amz-website-redirect-location", "https://evil.example/",
      "unexpected-header: x-amz-website-redirect-location is set but the service sets none")],
)  # fmt: skip
def test_an_unsigned_header_s3_stored_gets_the_upload_rejected(api, s3, header, value, reason):
    body = api.http.get("/put-url?content_type=image/png&filename=dot.png").json_body
    headers = {**body["headers"], header: value}
    assert requests.put(body["PUT_URL"], data=png(), headers=headers, timeout=10).status_code == 200
    assert verify(api, body["key"])["verdict"]["reason"] == reason


@pytest.mark.parametrize(
    "cache_control", ["max-age=0", "no-cache", "No-Store, must-revalidate", "private, max-age=0"]
)
def test_a_cache_control_that_only_stops_caching_is_verified(api, s3, cache_control):
    # Chromium sends "Cache-Control: max-age=0" with a PUT after a reload; S3 stores it.
    body = api.http.get("/put-url?content_type=image/png&filename=dot.png").json_body
    headers = {**body["headers"], "Cache-Control": cache_control}
    assert requests.put(body["PUT_URL"], data=png(), headers=headers, timeout=10).ok
    assert verify(api, body["key"])["verdict"]["reason"] is None


@pytest.mark.parametrize(
    "cache_control", ["public", "max-age=60", "s-maxage=0", "no-cache, public"]
)
def test_a_cache_control_that_lets_a_cache_serve_the_object_is_rejected(api, s3, cache_control):
    body = api.http.get("/put-url?content_type=image/png&filename=dot.png").json_body
    headers = {**body["headers"], "Cache-Control": cache_control}
    assert requests.put(body["PUT_URL"], data=png(), headers=headers, timeout=10).ok
    assert verify(api, body["key"])["verdict"]["reason"] == (
        "unexpected-header: Cache-Control is set but the service sets none")  # fmt: skip


@pytest.mark.parametrize("disposition", ["attachment", "inline"])
def test_the_content_disposition_the_service_signs_is_verified(api, s3, disposition):
    body = put(api, png(), content_type="image/png", filename="dot.png", disposition=disposition)
    assert body["headers"]["Content-Disposition"].startswith(f"{disposition}; filename=")
    assert verify(api, body["key"])["verdict"]["reason"] is None


def test_inline_for_a_scriptable_type_is_rejected_though_added_unsigned(api, s3):
    body = api.http.get("/put-url?content_type=text/html&filename=a.html").json_body
    inline = "inline; filename=\"a.html\"; filename*=UTF-8''a.html"
    headers = {**body["headers"], "Content-Disposition": inline}
    assert requests.put(body["PUT_URL"], data=HTML, headers=headers, timeout=10).status_code == 200
    assert verify(api, body["key"])["verdict"]["reason"] == (
        "unexpected-header: Content-Disposition is not the one the service signs")  # fmt: skip


def test_with_known_types_required_bytes_without_a_signature_are_rejected(api, s3, monkeypatch):
    body = put(api, b"MsgBox 1", content_type="image/gif")
    other = put(api, b"\x00\x01 unknown binary")
    monkeypatch.setenv("UPLOAD_REQUIRE_KNOWN_TYPES", "true")  # on after the uploads
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()
    assert verify(api, body["key"])["verdict"]["reason"] == (
        "type-mismatch: the content has no image/gif signature")  # fmt: skip
    assert verify(api, other["key"])["verdict"]["reason"] == (
        "unknown-content: the content matches no known signature (declared "
        "application/octet-stream)")  # fmt: skip


def test_an_upload_over_the_limit_is_rejected(api, s3, monkeypatch):
    body = put(api, b"x" * 20, content_type="text/plain")
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "10")  # lowered after the upload
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()
    reason = verify(api, body["key"])["verdict"]["reason"]
    assert reason == "too-large: 20 bytes over the limit of 10"


def test_a_key_this_service_never_issues_is_rejected(api, s3):
    s3.put_object(Bucket=BUCKET, Key="put_folder/index.html", Body=b"hi", ContentType="text/plain")
    verdict = verify(api, "put_folder/index.html")["verdict"]
    assert (verdict["UUID"], verdict["reason"]) == (
        None, "unknown-key: not a key this service issues")  # fmt: skip
    assert tags_of(s3, "quarantine/put_folder/index.html")["upload-status"] == "rejected"


def test_a_repeated_event_changes_nothing_and_publishes_nothing(api, s3, subscriber):
    body = put(api, png(), content_type="image/png")
    verify(api, body["key"])
    assert verify(api, body["key"]) == {"verdict": None}  # judged already
    rejected = put(api, HTML, content_type="image/png")
    verify(api, rejected["key"])
    assert verify(api, rejected["key"]) == {"verdict": None}  # gone from its key
    assert [e["detail-type"] for e in subscriber()] == ["Upload Verified", "Upload Rejected"]


class Racing:
    """The verifier's S3 client, with one more PUT of the same key slipped in just before
    ``operation``: a race between the verifier's calls, made deterministic."""

    def __init__(self, client, operation: str, replace: bytes, content_type: str) -> None:
        self._client, self._operation, self._replace = client, operation, replace
        self._type = content_type

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if name != self._operation:
            return call

        def raced(**kwargs):
            key = kwargs.get("Key") or kwargs["CopySource"]["Key"]
            self._client.put_object(Bucket=BUCKET, Key=key, Body=self._replace,
                                    ContentType=self._type)  # fmt: skip
            return call(**kwargs)

        return raced


def racing_verifier(s3, operation: str, replace: bytes, content_type: str = "image/png"):
    from chalicelib.verifier.verify import Verifier

    # The type check's races: the malware scan (test_malware_scan.py) is off here.
    settings = app_module.services().settings._replace(malware_scan=False)
    racing: Any = Racing(s3, operation, replace, content_type)  # an S3Client, but for one call
    return Verifier(lambda: racing, lambda: boto3.client("events"), settings,
                    per_principal=False)  # fmt: skip


def test_bytes_replaced_while_being_verified_are_not_taken_as_verified(api, s3):
    # GIVEN a real PNG, replaced by HTML after the verifier read it, before it tagged it
    body = put(api, png(), content_type="image/png")
    verdict = racing_verifier(s3, "put_object_tagging", HTML).verify(BUCKET, body["key"])
    assert verdict is not None
    assert verdict.reason is None  # about the PNG it read
    # THEN the tags name the PNG's ETag, so the HTML is not verified...
    assert api.http.get(f"/uploads/{body['UUID']}").json_body["status"] == "scanning"
    assert api.http.get(f"/uploads/{body['UUID']}/download-url").status_code == 409
    # ...and the HTML's own event judges it: rejected.
    assert verify(api, body["key"])["verdict"]["reason"].startswith("markup:")


def test_bytes_replaced_while_being_quarantined_are_not_deleted_unjudged(api, s3):
    # GIVEN HTML declared image/png, replaced by a real PNG after its quarantine copy
    body = put(api, HTML, content_type="image/png")
    verdict = racing_verifier(s3, "delete_object", png()).verify(BUCKET, body["key"])
    assert verdict is None  # the delete was conditional on the HTML's ETag: 412
    # THEN the PNG is still there, and its own event verifies it
    assert s3.get_object(Bucket=BUCKET, Key=body["key"])["Body"].read() == png()
    assert verify(api, body["key"])["verdict"]["reason"] is None


def test_the_same_bytes_with_another_type_are_judged_again(api, s3):
    body = put(api, png(), content_type="image/png")
    verdict = racing_verifier(s3, "put_object_tagging", png(), "text/html").verify(
        BUCKET, body["key"])  # fmt: skip
    assert verdict is not None
    assert api.http.get(f"/uploads/{body['UUID']}").json_body["status"] == "scanning"
    claim = api.http.post(f"/uploads/{body['UUID']}/claim")
    assert (claim.status_code, claim.json_body["Code"]) == (409, "ConflictError")
    assert verify(api, body["key"])["verdict"]["reason"] == (
        "type-mismatch: the content is image/png but declared text/html"
    )


def test_bytes_replaced_before_the_first_bytes_are_read_are_left_to_their_own_event(api, s3):
    body = put(api, png(), content_type="image/png")
    assert racing_verifier(s3, "get_object", HTML).verify(BUCKET, body["key"]) is None
    assert tags_of(s3, body["key"]) == {}


def test_an_event_for_another_bucket_is_ignored(api, s3):
    event = s3_event(api, "put_folder/x", bucket="someone-elses")
    assert api.lambda_.invoke("verify_upload", event).payload == {"verdict": None}


@pytest.mark.parametrize(
    "detail",
    [{}, {"bucket": "b"}, {"bucket": {"name": BUCKET}, "object": {"key": 7}},
     {"bucket": {"name": BUCKET}, "object": {"key": "put_folder/" + "k" * 2000}},
     {"bucket": {"name": BUCKET}, "object": {"key": "put_folder/" + "\U0001f600" * 300}},
     {"bucket": {"name": BUCKET}, "object": {"key": "put_folder/\ud800"}},
     {"bucket": {"name": BUCKET}, "object": {"key": "put_folder/absent.png"}}],
)  # fmt: skip
def test_a_malformed_or_stale_event_is_answered_with_no_verdict(api, s3, detail):
    event = api.events.generate_cw_event(source="aws.s3", detail_type="Object Created",
                                         detail=detail, resources=[])  # fmt: skip
    assert api.lambda_.invoke("verify_upload", event).payload == {"verdict": None}


def test_when_eventbridge_is_down_the_object_is_left_unjudged_for_the_retry(api, s3, monkeypatch):
    body = put(api, png(), content_type="image/png")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", f"http://127.0.0.1:{free_port()}")
    app_module.verifier.cache_clear()
    with pytest.raises(Exception, match="could not be reached"):
        verify(api, body["key"])
    # Lambda's retry will judge it: nothing but GuardDuty's own tag is there.
    assert tags_of(s3, body["key"]) == {"GuardDutyMalwareScanStatus": "NO_THREATS_FOUND"}


def test_a_download_before_the_verdict_is_a_409_that_says_to_wait(api, s3):
    body = put(api, png(), content_type="image/png")
    assert api.http.get(f"/uploads/{body['UUID']}").json_body["status"] == "scanning"
    response = api.http.get(f"/uploads/{body['UUID']}/download-url")
    assert (response.status_code, response.json_body) == (409, {
        "Code": "ConflictError",
        "Message": f"upload {body['UUID']} is not verified yet; allowed: a download once GET "
        "/uploads/{uuid} answers status 'verified' (it takes a few seconds)"})  # fmt: skip


# --- claims -------------------------------------------------------------------------------

PROD_LIKE = load_app("local-prod")  # Cognito, prod's rules, UPLOAD_UNCLAIMED_DAYS=7
ALICE, BOB = "7d1c9a4e-5b2f-4c8e-9a1d-3e6f0b2c4d5a", "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"


@pytest.fixture
def prod_api(s3) -> Iterator[Client]:
    PROD_LIKE.services.cache_clear()
    PROD_LIKE.verifier.cache_clear()
    with Client(PROD_LIKE.app, stage_name="local-prod") as client:
        yield client
    PROD_LIKE.services.cache_clear()
    PROD_LIKE.verifier.cache_clear()


def auth(sub: str) -> dict[str, str]:
    return {"Authorization": unsigned_jwt({"sub": sub, "cognito:username": sub[:5]})}


def prod_put(api: Client, sub: str, data: bytes) -> dict[str, Any]:
    digest = __import__("base64").b64encode(hashlib.sha256(data).digest()).decode()
    query = urlencode({"content_type": "image/png", "size": len(data), "sha256": digest})
    body: dict[str, Any] = api.http.get(f"/put-url?{query}", headers=auth(sub)).json_body
    response = requests.put(body["PUT_URL"], data=data, headers=body["headers"], timeout=10)
    assert response.status_code == 200, response.text
    return body


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer:UserWarning")
def test_uploads_are_stored_unclaimed_and_a_claim_keeps_them(prod_api, s3):
    body = prod_put(prod_api, ALICE, png())
    assert body["headers"]["x-amz-tagging"] == "upload-claimed=false"
    assert tags_of(s3, body["key"]) == {"upload-claimed": "false"}
    claim = f"/uploads/{body['UUID']}/claim"
    early = prod_api.http.post(claim, headers=auth(ALICE))
    assert (early.status_code, early.json_body["Code"]) == (409, "ConflictError")
    verdict = verify(prod_api, body["key"])
    assert verdict["verdict"]["principal"] == ALICE
    claimed = prod_api.http.post(claim, headers=auth(ALICE))
    assert (claimed.status_code, claimed.json_body) == (
        200, {"UUID": body["UUID"], "key": body["key"], "claimed": True})  # fmt: skip
    assert tags_of(s3, body["key"]) == {
        "upload-claimed": "true", "upload-status": "verified", "upload-type": "image/png",
        "upload-etag": hashlib.md5(png(), usedforsecurity=False).hexdigest(),
        "GuardDutyMalwareScanStatus": "NO_THREATS_FOUND"}  # fmt: skip
    # Someone else's upload: as if it did not exist.
    bob = prod_api.http.post(claim, headers=auth(BOB))
    assert (bob.status_code, bob.json_body["Code"]) == (404, "NotFoundError")


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer:UserWarning")
def test_a_multipart_upload_is_created_unclaimed(prod_api, s3):
    created = prod_api.http.post(
        "/s3/multipart", body=b'{"filename": "a.png", "type": "image/png", "checksum": "sha256"}',
        headers={**auth(ALICE), "Content-Type": "application/json"},
    ).json_body  # fmt: skip
    data = png()
    digest = __import__("base64").b64encode(hashlib.sha256(data).digest()).decode()
    ref = urlencode({"key": created["key"], "sha256": digest})
    part = prod_api.http.get(f"/s3/multipart/{created['uploadId']}/1?{ref}", headers=auth(ALICE))
    etag = requests.put(part.json_body["url"], data=data, headers=part.json_body["headers"],
                        timeout=10).headers["ETag"]  # fmt: skip
    done = prod_api.http.post(
        f"/s3/multipart/{created['uploadId']}/complete?key={created['key']}",
        body=json.dumps({"parts": [{"PartNumber": 1, "ETag": etag}]}).encode(),
        headers={**auth(ALICE), "Content-Type": "application/json"},
    )
    assert done.status_code == 200, done.body
    assert tags_of(s3, created["key"]) == {"upload-claimed": "false"}


@pytest.mark.parametrize(
    ("path", "code"),
    [("/uploads/not-a-uuid/claim", 400), ("/uploads/" + "9" * 5000 + "/claim", 400),
     ("/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b/claim?x=1", 400),
     ("/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b/claim", 404)],
)  # fmt: skip
def test_a_bad_or_unknown_claim_says_what_was_wrong(api, s3, path, code):
    response = api.http.post(path)
    assert response.status_code == code
    assert set(response.json_body) == {"Code", "Message"}


# --- the webhook --------------------------------------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.answers, Receiver.received = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/uploads"
    server.shutdown()


def test_the_webhook_is_signed_with_the_key_from_ssm(api, s3, s3_endpoint, receiver,
                                                     monkeypatch):  # fmt: skip
    ssm = boto3.client("ssm", endpoint_url=s3_endpoint, region_name="us-east-1")
    ssm.put_parameter(Name="/uploads/webhook-key", Value="k3y", Type="SecureString")
    monkeypatch.setenv("UPLOAD_WEBHOOK_URL", receiver)
    monkeypatch.setenv("UPLOAD_WEBHOOK_SECRET", "/uploads/webhook-key")
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()
    body = put(api, png(), content_type="image/png")
    verdict = verify(api, body["key"])["verdict"]
    ((headers, sent),) = Receiver.received
    assert json.loads(sent) == {"type": "Upload Verified", "detail": verdict}
    timestamp, mac = (p.split("=", 1)[1] for p in headers["X-Upload-Signature"].split(","))
    expected = hmac.new(b"k3y", f"{timestamp}.".encode() + sent, hashlib.sha256).hexdigest()
    assert mac == expected
    assert "k3y" not in json.dumps(dict(__import__("os").environ))


def test_without_its_key_the_webhook_is_skipped_and_the_verdict_stands(api, s3, receiver,
                                                                        monkeypatch):  # fmt: skip
    monkeypatch.setenv("UPLOAD_WEBHOOK_URL", receiver)
    monkeypatch.setenv("UPLOAD_WEBHOOK_SECRET", "/uploads/no-such-parameter")
    app_module.services.cache_clear()
    app_module.verifier.cache_clear()
    body = put(api, png(), content_type="image/png")
    assert verify(api, body["key"])["verdict"]["reason"] is None
    assert tags_of(s3, body["key"])["upload-status"] == "verified"
    assert Receiver.received == []


def test_the_webhook_follows_no_redirect(receiver):
    Receiver.answers = [302]
    hook = Webhook(receiver, lambda: b"k", sleep=lambda s: None)
    assert hook.send("Upload Verified", {"UUID": "u"}) is False
    assert len(Receiver.received) == 1  # not re-sent, as a GET, to the Location


def test_a_receiver_that_never_finishes_answering_costs_at_most_the_budget(dripping):
    # Each attempt gets 0.2 s in all, the delivery 0.5 s: the drip (a byte every 0.05 s)
    # would keep a socket timeout from ever firing.
    hook = Webhook(dripping, lambda: b"k", sleep=lambda s: None, timeout=0.2, budget=0.5)
    assert hook.send("Upload Verified", {"UUID": "u"}) is False
    assert 1 <= len(Dripping.started) <= 3


class Dripping(http.server.BaseHTTPRequestHandler):
    started: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        Dripping.started.append(1)
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(40):
            try:
                self.wfile.write(b"X-Drip: 1\r\n")
                self.wfile.flush()
            except OSError:
                return
            __import__("time").sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dripping() -> Iterator[str]:
    Dripping.started = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_the_webhook_retries_a_5xx_and_gives_up_on_a_4xx(receiver):
    slept: list[float] = []
    hook = Webhook(receiver, lambda: b"k", sleep=slept.append, clock=lambda: 1_800_000_000)
    Receiver.answers = [503, 500, 204]
    assert hook.send("Upload Verified", {"UUID": "u"}) is True
    assert (len(Receiver.received), slept) == (3, [1.0, 2.0])
    Receiver.answers, Receiver.received, slept[:] = [400], [], []
    assert hook.send("Upload Verified", {"UUID": "u"}) is False
    assert (len(Receiver.received), slept) == (1, [])
    Receiver.answers, Receiver.received = [500, 500, 500], []
    assert hook.send("Upload Verified", {"UUID": "u"}) is False
    assert len(Receiver.received) == 3  # ATTEMPTS, then logged and dropped


@pytest.mark.parametrize(
    "head",
    [{"Expires": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)},
     {"ExpiresString": "Tue, 01 Jan 2030 00:00:00 GMT"}],
)  # fmt: skip
def test_an_expires_header_is_found_whichever_field_botocore_fills(head):
    # Lambda's runtime brings its own botocore: an older one returns only Expires.
    assert stored_header_problem({**head, "Metadata": {}}, None, "image/png") == (  # type: ignore[typeddict-item]
        "unexpected-header: Expires is set but the service sets none")  # fmt: skip
