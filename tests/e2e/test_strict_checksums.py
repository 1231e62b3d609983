"""SHA-256 integrity end to end, on the `local-prod` stage (prod's rules: types, size, a
checksum required, no overwrite; and Cognito) and the strict S3, which verifies
x-amz-checksum-sha256 as AWS does: a client that knows only SHA-256 uploads a single file
and a multipart file; changed bytes and dropped headers are refused by S3 itself; the
status route shows the client's checksum."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pytest
import requests

from presigned_upload.cli import main
from presigned_upload.transfer import composite_sha256
from tests.e2e.test_events import settled
from tests.support import unsigned_jwt

pytestmark = [pytest.mark.e2e, pytest.mark.strict]
MiB = 1024**2
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
TOKEN = unsigned_jwt({"sub": "carol-3", "cognito:username": "carol", "token_use": "id"})
API = requests.Session()  # every API call as that user
API.headers["Authorization"] = TOKEN


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def upload_with_cli(stack, tmp_path, capsys, path, *options: str) -> dict[str, Any]:
    code = main(["upload", str(path), "--api", stack.api, "--token", TOKEN, "--json",
                 "--no-progress", "--state-dir", str(tmp_path / "state"), *options])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


def status(stack, uuid: str) -> dict[str, Any]:
    response = API.get(f"{stack.api}/uploads/{uuid}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_cli_uploads_one_file_with_sha256_and_the_status_shows_it(
    local_prod_stack, tmp_path, capsys
):
    f = tmp_path / "cat.png"
    f.write_bytes(PNG)
    result = upload_with_cli(local_prod_stack, tmp_path, capsys, f)
    expected = {"algorithm": "SHA256", "value": b64(hashlib.sha256(PNG).digest()),
                "type": "FULL_OBJECT"}  # fmt: skip
    assert (result["mode"], result["checksum"]) == ("single", expected)
    assert status(local_prod_stack, result["UUID"])["checksum"] == expected


def test_the_cli_uploads_parts_with_sha256_and_the_status_shows_their_composite(
    local_prod_stack, tmp_path, capsys
):
    f = tmp_path / "scan.pdf"
    data = b"%PDF-1.7\n" + os.urandom(7 * MiB)
    f.write_bytes(data)
    result = upload_with_cli(local_prod_stack, tmp_path, capsys, f, "--threshold", "5",
                             "--part-size", "5")  # fmt: skip
    parts = [data[: 5 * MiB], data[5 * MiB :]]
    composite = composite_sha256([hashlib.sha256(p).digest() for p in parts])
    # computed here independently: the SHA-256 of the parts' SHA-256s, then "-2"
    assert composite == b64(hashlib.sha256(b"".join(
        hashlib.sha256(p).digest() for p in parts)).digest()) + "-2"  # fmt: skip
    expected = {"algorithm": "SHA256", "value": composite, "type": "COMPOSITE"}
    assert (result["mode"], result["parts"], result["checksum"]) == ("multipart", 2, expected)
    landed = status(local_prod_stack, result["UUID"])
    assert (landed["size"], landed["checksum"]) == (len(data), expected)


def put_ticket(stack, body: bytes) -> dict[str, Any]:
    params = {"content_type": "image/png", "size": str(len(body)),
              "sha256": b64(hashlib.sha256(body).digest())}  # fmt: skip
    response = API.get(f"{stack.api}/put-url", params=params, timeout=10)
    assert response.status_code == 200, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def test_s3_refuses_changed_bytes_and_a_dropped_checksum_header_on_a_put(local_prod_stack):
    ticket = put_ticket(local_prod_stack, PNG)
    url, headers = ticket["PUT_URL"], ticket["headers"]
    changed = requests.put(url, data=PNG[:-1] + b"!", headers=headers, timeout=30)
    assert (changed.status_code, "<Code>BadDigest</Code>" in changed.text) == (400, True)
    dropped = {k: v for k, v in headers.items() if k != "x-amz-checksum-sha256"}
    assert requests.put(url, data=PNG, headers=dropped, timeout=30).status_code == 403
    assert requests.put(url, data=PNG, headers=headers, timeout=30).status_code == 200


def test_s3_refuses_changed_bytes_a_dropped_header_and_a_part_without_sha256(local_prod_stack):
    api = local_prod_stack.api
    created = API.post(f"{api}/s3/multipart", timeout=10, json={
        "filename": "scan.pdf", "type": "application/pdf", "checksum": "sha256"})  # fmt: skip
    upload = created.json()
    assert (upload["checksum"], upload["checksum_required"]) == ("sha256", True)
    part = os.urandom(5 * MiB)
    base = f"{api}/s3/multipart/{upload['uploadId']}/1"
    signed = API.get(base, params={"key": upload["key"],
                                        "sha256": b64(hashlib.sha256(part).digest())},
                          timeout=10).json()  # fmt: skip
    changed = requests.put(signed["url"], data=part[:-1] + b"!", headers=signed["headers"],
                           timeout=60)  # fmt: skip
    assert (changed.status_code, "<Code>BadDigest</Code>" in changed.text) == (400, True)
    assert requests.put(signed["url"], data=part, timeout=60).status_code == 403
    # An MD5 meets the service's rule, but S3 demands the upload's SHA-256 on every part.
    md5 = b64(hashlib.md5(part).digest())  # noqa: S324 (S3's Content-MD5)
    md5_only = API.get(base, params={"key": upload["key"], "md5": md5}, timeout=10).json()
    refused = requests.put(md5_only["url"], data=part, headers=md5_only["headers"], timeout=60)
    assert (refused.status_code, "<Code>InvalidRequest</Code>" in refused.text) == (400, True)
    none = API.get(base, params={"key": upload["key"]}, timeout=10)
    assert (none.status_code, none.json()["Code"]) == (400, "BadRequestError")


def test_local_prod_on_the_strict_s3_shows_the_checksum_and_the_verdict_of_one_upload(
    local_prod_stack, tmp_path, capsys
):
    # GIVEN `make run S3=strict RUN_ARGS="--stage local-prod"`: signatures and checksums
    # checked by S3, and S3's events delivered to the verifier
    f = tmp_path / "cat.png"
    f.write_bytes(PNG)
    # WHEN the CLI uploads a real PNG
    result = upload_with_cli(local_prod_stack, tmp_path, capsys, f)
    # THEN the same upload shows the SHA-256 S3 stored and the verifier's verdict
    landed = settled(local_prod_stack, result["UUID"], http=API)
    assert (landed["status"], landed["checksum"]) == ("verified", {
        "algorithm": "SHA256", "value": b64(hashlib.sha256(PNG).digest()),
        "type": "FULL_OBJECT"})  # fmt: skip


def test_local_prod_on_the_strict_s3_rejects_a_page_declared_as_an_image(local_prod_stack):
    page = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    ticket = put_ticket(local_prod_stack, page)
    stored = requests.put(ticket["PUT_URL"], data=page, headers=ticket["headers"], timeout=10)
    assert stored.status_code == 200, stored.text
    landed = settled(local_prod_stack, ticket["UUID"], http=API)
    reason = "markup: the content is an HTML or SVG or XML document but declared image/png"
    assert landed == {"UUID": ticket["UUID"], "status": "rejected", "reason": reason}
