"""Uppy 6 behind auth: `@uppy/aws-s3` with `signRequest` forwarding each S3 request, with
the user's token, to POST /s3/sign, in headless Chromium, on a Cognito stage on the strict
S3 (signatures, signed headers and x-amz-mp-object-size verified)."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import sample
from tests.stack import local_s3
from tests.support import unsigned_jwt

pytestmark = [pytest.mark.browser, pytest.mark.strict]
MiB = 1024**2
BUCKET = "uploads-local"
ALICE = unsigned_jwt({"sub": "alice-1", "cognito:username": "alice", "token_use": "id"})
BOB = unsigned_jwt({"sub": "bob-2", "cognito:username": "bob", "token_use": "id"})


def uppy_signed(page, uppy_page, stack, files, all_multipart=False):
    page.goto(uppy_page)
    assert page.evaluate("([api, token, all]) => window.startUppySigned(api, token, all)",
                         [stack.api, ALICE, all_multipart])  # fmt: skip
    page.set_input_files(".uppy-Dashboard-input >> nth=0", [str(f) for f in files])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    page.wait_for_function("window.uppyResults.length > 0", timeout=90_000)
    return page.evaluate("window.uppyResults[0]")


def landed(stack, result, files):
    """Each file, byte-exact, at a key the server named in Alice's space."""
    assert result["failed"] == []
    keys = {f["name"]: f["key"] for f in result["successful"]}
    assert sorted(keys) == sorted(f.name for f in files)
    for f in files:
        assert keys[f.name].startswith("put_folder/alice-1/")
        assert keys[f.name].endswith("." + f.name.rsplit(".", 1)[1])
        body = local_s3(stack).get_object(Bucket=BUCKET, Key=keys[f.name])["Body"].read()
        assert body == f.read_bytes()
    return keys


def test_uppy_with_sign_request_uploads_both_sizes_into_the_users_space(
    signed_uppy_stack, page, uppy_page, tmp_path
):
    small = sample(tmp_path, "photo.jpg", 2000)
    large = sample(tmp_path, "movie.mp4", 6 * MiB + 5)
    result = uppy_signed(page, uppy_page, signed_uppy_stack, [small, large])
    keys = landed(signed_uppy_stack, result, [small, large])
    parts = {f["name"]: f["parts"] for f in result["successful"]}
    assert parts == {"movie.mp4": 2, "photo.jpg": 0}
    head = local_s3(signed_uppy_stack).head_object(Bucket=BUCKET, Key=keys["movie.mp4"])
    assert head["ContentType"] == "video/mp4"
    # Bob may not have requests signed for Alice's key.
    refused = requests.post(f"{signed_uppy_stack.api}/s3/sign", timeout=10,
                            headers={"Authorization": BOB}, json={
                                "method": "PUT", "key": keys["movie.mp4"], "uploadId": "x",
                                "partNumber": 1})  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["Message"].startswith(f"key '{keys['movie.mp4']}' is not an upload key")


def test_uppy_refuses_a_type_the_stage_does_not_allow(signed_uppy_stack, page, uppy_page, tmp_path):
    page_file = sample(tmp_path, "page.html", 100)
    result = uppy_signed(page, uppy_page, signed_uppy_stack, [page_file])
    assert result["successful"] == []
    assert "content_type 'text/html' is not allowed" in result["failed"][0]["error"]


def test_uppy_with_every_file_multipart_works_under_no_overwrite(
    no_overwrite_uppy_stack, page, uppy_page, tmp_path
):
    small = sample(tmp_path, "photo.jpg", 3000)
    large = sample(tmp_path, "movie.mp4", 6 * MiB + 7)
    result = uppy_signed(page, uppy_page, no_overwrite_uppy_stack, [small, large],
                         all_multipart=True)  # fmt: skip
    landed(no_overwrite_uppy_stack, result, [small, large])
    parts = {f["name"]: f["parts"] for f in result["successful"]}
    assert parts == {"movie.mp4": 2, "photo.jpg": 1}
