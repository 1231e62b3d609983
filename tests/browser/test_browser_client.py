"""The project's browser client (browser/presigned-upload.js), through the upload page, in
headless Chromium on the `local-prod` stage: prod's four rules (types, 10 MiB, a checksum
required, no overwrite) and Cognito, on the strict S3, which verifies every signature and
SHA-256. The page's dev sign-in mints the unsigned token `chalice local` accepts."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

import pytest

from tests.stack import local_s3

pytestmark = [pytest.mark.browser, pytest.mark.strict]
MiB = 1024**2
BUCKET = "uploads-local"
SPACE = "put_folder/local-alice/"  # the space of the dev sign-in's user "alice"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def file_of(tmp_path, name: str, head: bytes, size: int):
    f = tmp_path / name
    f.write_bytes(head + os.urandom(size - len(head)))
    return f


def signed_in(page, stack):
    page.goto(stack.page)
    page.click("#dev-signin")


def finished(page, name: str):
    box = page.locator(f'.upload[data-name="{name}"]')
    page.wait_for_function(
        "name => ['uploaded', 'failed'].includes(document.querySelector("
        "`.upload[data-name=\"${name}\"]`)?.dataset.status)", arg=name, timeout=90_000)  # fmt: skip
    return box


def stored(stack, key: str) -> bytes:
    body: bytes = local_s3(stack).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_without_a_token_the_page_shows_the_apis_401(local_prod_stack, page, tmp_path):
    f = file_of(tmp_path, "cat.png", b"\x89PNG\r\n\x1a\n", 2000)
    page.goto(local_prod_stack.page)
    page.set_input_files("#files", str(f))
    box = finished(page, "cat.png")
    assert box.get_attribute("data-status") == "failed"
    assert box.locator(".result").inner_text().startswith("failed: 401 ")


def test_a_small_file_goes_in_one_put_with_its_sha256_stored(local_prod_stack, page, tmp_path):
    f = file_of(tmp_path, "cat.png", b"\x89PNG\r\n\x1a\n", 3000)
    signed_in(page, local_prod_stack)
    page.set_input_files("#files", str(f))
    box = finished(page, "cat.png")
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    key = box.get_attribute("data-key")
    assert key == f"{SPACE}{box.get_attribute('data-uuid')}.png"
    assert stored(local_prod_stack, key) == f.read_bytes()
    assert box.get_attribute("data-checksum") == b64(hashlib.sha256(f.read_bytes()).digest())
    assert "single PUT" in box.locator(".result").inner_text()


def composite(data: bytes, part: int) -> str:
    digests = [hashlib.sha256(data[i : i + part]).digest() for i in range(0, len(data), part)]
    return f"{b64(hashlib.sha256(b''.join(digests)).digest())}-{len(digests)}"


def test_a_large_file_goes_in_sha256_parts_with_their_composite_stored(
    local_prod_stack, page, tmp_path
):
    f = file_of(tmp_path, "scan.pdf", b"%PDF-1.7\n", 7 * MiB)
    signed_in(page, local_prod_stack)
    page.set_input_files("#files", str(f))
    box = finished(page, "scan.pdf")
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert "multipart, 2 parts" in box.locator(".result").inner_text()
    assert stored(local_prod_stack, box.get_attribute("data-key")) == f.read_bytes()
    assert box.get_attribute("data-checksum") == composite(f.read_bytes(), 5 * MiB)


def start_with_part_2_hanging(page, f) -> None:
    """Add ``f``; part 2's PUT to S3 never gets an answer, and part 1's has arrived."""
    page.route("**/*partNumber=2*", lambda route: None)
    with page.expect_response(lambda r: "partNumber=1" in r.url and r.request.method == "PUT"):
        page.set_input_files("#files", str(f))


def test_a_reload_mid_upload_resumes_with_the_parts_s3_holds(local_prod_stack, page, tmp_path):
    f = file_of(tmp_path, "book.pdf", b"%PDF-1.7\n", 9 * MiB)
    signed_in(page, local_prod_stack)
    start_with_part_2_hanging(page, f)  # then the page is reloaded
    # Unrouted only after the reload: unrouting first can let the held part 2 go on to S3
    # before the page is gone (then both parts are resumed, and the test is flaky).
    page.reload()
    page.unroute_all(behavior="ignoreErrors")
    page.click("#dev-signin")
    page.set_input_files("#files", str(f))
    box = finished(page, "book.pdf")
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert box.get_attribute("data-resumed") == "1"
    assert "multipart, 2 parts, 1 resumed" in box.locator(".result").inner_text()
    assert stored(local_prod_stack, box.get_attribute("data-key")) == f.read_bytes()
    assert box.get_attribute("data-checksum") == composite(f.read_bytes(), 5 * MiB)


def test_cancel_aborts_the_multipart_upload_in_s3(local_prod_stack, page, tmp_path):
    f = file_of(tmp_path, "draft.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    start_with_part_2_hanging(page, f)  # until cancelled
    s3 = local_s3(local_prod_stack)
    (started,) = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=SPACE)["Uploads"]
    assert re.fullmatch(f"{SPACE}[0-9a-f-]{{36}}\\.pdf", started["Key"]), started["Key"]
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click('.upload[data-name="draft.pdf"] button')
    assert deleted.value.status == 200
    box = finished(page, "draft.pdf")
    assert box.locator(".result").inner_text() == "failed: the upload was cancelled"
    assert s3.list_multipart_uploads(Bucket=BUCKET, Prefix=SPACE).get("Uploads", []) == []
    assert page.evaluate("Object.keys(localStorage)") == []


def test_a_part_refused_for_good_stops_the_others_and_keeps_the_upload_to_resume(
    local_prod_stack, page, tmp_path
):
    f = file_of(tmp_path, "report.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    # Part 1 is in flight for ever; part 2 is refused for good, but only once part 1's PUT
    # is in flight (part 2 is smaller, so it is often hashed and signed first).
    held: dict[str, Any] = {}

    def refuse(route: Any) -> None:
        route.fulfill(status=400, body="<Error><Code>InvalidArgument</Code></Error>")

    def part_1(route: Any) -> None:
        held["1"] = route
        if "2" in held:
            refuse(held.pop("2"))

    def part_2(route: Any) -> None:
        if "1" in held:
            refuse(route)
        else:
            held["2"] = route

    page.route("**/*partNumber=1*", part_1)
    page.route("**/*partNumber=2*", part_2)
    with page.expect_event("requestfailed", lambda r: "partNumber=1" in r.url):
        page.set_input_files("#files", str(f))
    box = finished(page, "report.pdf")
    assert box.locator(".result").inner_text() == (
        "failed: 400 S3 refused the upload: 400 InvalidArgument"
    )
    # Not cancelled: the upload stays in S3 and in the page's storage, to resume.
    assert len(page.evaluate("Object.keys(localStorage)")) == 1
    page.unroute_all(behavior="ignoreErrors")
    page.reload()
    page.click("#dev-signin")
    page.set_input_files("#files", str(f))
    box = finished(page, "report.pdf")
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert stored(local_prod_stack, box.get_attribute("data-key")) == f.read_bytes()
    assert page.evaluate("Object.keys(localStorage)") == []


def test_without_its_worker_the_client_hashes_on_the_main_thread(local_prod_stack, page, tmp_path):
    # A CSP's worker-src, a wrong MIME type or a missing file stops the Worker loading.
    page.route("**/sha256-worker.js", lambda route: route.fulfill(status=404, body="gone"))
    f = file_of(tmp_path, "map.png", b"\x89PNG\r\n\x1a\n", 4000)
    signed_in(page, local_prod_stack)
    page.set_input_files("#files", str(f))
    box = finished(page, "map.png")
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert box.get_attribute("data-checksum") == b64(hashlib.sha256(f.read_bytes()).digest())


def test_cancel_while_resuming_aborts_the_kept_upload(local_prod_stack, page, tmp_path):
    f = file_of(tmp_path, "memo.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    start_with_part_2_hanging(page, f)
    page.reload()  # before unrouting, as above
    page.unroute_all(behavior="ignoreErrors")
    page.click("#dev-signin")
    # The resume's listing of the parts S3 holds gets no answer; the user cancels.
    page.route("**/s3/multipart/*?key=*", lambda route: (
        None if route.request.method == "GET" else route.continue_()))  # fmt: skip
    with page.expect_request(lambda r: r.method == "GET" and "/s3/multipart/" in r.url):
        page.set_input_files("#files", str(f))
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click('.upload[data-name="memo.pdf"] button')
    assert deleted.value.status == 200
    box = finished(page, "memo.pdf")
    assert box.locator(".result").inner_text() == "failed: the upload was cancelled"
    s3 = local_s3(local_prod_stack)
    assert s3.list_multipart_uploads(Bucket=BUCKET, Prefix=SPACE).get("Uploads", []) == []
    assert page.evaluate("Object.keys(localStorage)") == []


def test_the_browser_is_never_asked_to_set_a_header_it_refuses(local_prod_stack, page, tmp_path):
    # GIVEN a small file (one PUT whose Content-Length is signed) and a large one (parts
    # whose sizes are signed), and the page's console recorded
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    small = file_of(tmp_path, "cat.png", b"\x89PNG\r\n\x1a\n", 3000)
    large = file_of(tmp_path, "scan.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    # WHEN both are uploaded
    page.set_input_files("#files", [str(small), str(large)])
    boxes = [finished(page, "cat.png"), finished(page, "scan.pdf")]
    # THEN both are stored, and Chromium refused no header (it sets Content-Length itself)
    assert [b.get_attribute("data-status") for b in boxes] == ["uploaded", "uploaded"]
    assert "multipart, 2 parts" in boxes[1].locator(".result").inner_text()
    assert [m for m in messages if "unsafe header" in m] == []


KEYS_OF = """async ([api, tokens]) => {
  const { Uploader } = await import("/client/presigned-upload.js");
  const file = new File(["x"], "same.pdf", { lastModified: 1 });
  const keys = [];
  for (const token of tokens) {
    keys.push(await new Uploader({ api, getToken: () => token }).storageKey(file));
  }
  return keys;
}"""


def test_kept_uploads_are_per_caller_even_without_a_sub(local_prod_stack, page):
    page.goto(local_prod_stack.page)
    jwt = "e30." + base64.urlsafe_b64encode(b'{"sub":"alice"}').decode().rstrip("=") + ".sig"
    keys = page.evaluate(KEYS_OF, [local_prod_stack.api, ["opaque-a", "opaque-b", None, jwt, jwt]])
    prefix = f"presigned-upload:{local_prod_stack.api}|"
    hashed = [hashlib.sha256(t).hexdigest()[:32] for t in (b"opaque-a", b"opaque-b")]
    callers = [f"token:{hashed[0]}", f"token:{hashed[1]}", "anonymous", "sub:alice", "sub:alice"]
    assert keys == [f"{prefix}{caller}|same.pdf|1|1" for caller in callers]


def test_an_expired_kept_upload_is_never_resumed_and_every_expired_one_is_swept(
    local_prod_stack, page, tmp_path
):
    # GIVEN an upload of the file kept a day ago, and another file's that has expired too
    f = file_of(tmp_path, "old.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    page.set_input_files("#files", str(f))
    assert finished(page, "old.pdf").get_attribute("data-status") == "uploaded"
    stale = {"key": "put_folder/local-alice/x.pdf", "uploadId": "stale-upload", "UUID": "x",
             "partSize": 5 * MiB, "expiresAt": 1}  # fmt: skip
    page.evaluate("""async ([api, record, size, lastModified]) => {
      const { Uploader } = await import("/client/presigned-upload.js");
      const getToken = () => document.getElementById("token").value;
      const file = new File([new Uint8Array(size)], "old.pdf", { lastModified });
      const key = await new Uploader({ api, getToken }).storageKey(file);
      localStorage.setItem(key, JSON.stringify(record));
      localStorage.setItem("presigned-upload:elsewhere|sub:bob|b.pdf|1|1", JSON.stringify(record));
      localStorage.setItem("presigned-upload:elsewhere|sub:bob|c.pdf|1|1", "{not json");
    }""", [local_prod_stack.api, stale, 6 * MiB, int(f.stat().st_mtime * 1000)])  # fmt: skip
    assert len(page.evaluate("Object.keys(localStorage)")) == 3
    # WHEN the same file is uploaded again
    listings: list[str] = []
    page.on("request", lambda r: listings.append(r.url) if "stale-upload" in r.url else None)
    page.reload()
    page.click("#dev-signin")
    page.set_input_files("#files", str(f))
    box = finished(page, "old.pdf")
    # THEN it is a new upload, the expired one is never asked for, and none is left
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert listings == []
    assert [
        k for k in page.evaluate("Object.keys(localStorage)") if k.startswith("presigned")
    ] == []


def test_an_upload_the_api_refuses_for_good_is_aborted_and_forgotten(
    local_prod_stack, page, tmp_path
):
    f = file_of(tmp_path, "refused.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)
    refusal = '{"Code": "BadRequestError", "Message": "the upload is over the limit"}'
    page.route("**/complete?*", lambda route: route.fulfill(
        status=400, content_type="application/json", body=refusal))  # fmt: skip
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.set_input_files("#files", str(f))
    assert deleted.value.status == 200
    box = finished(page, "refused.pdf")
    assert box.locator(".result").inner_text() == "failed: 400 the upload is over the limit"
    assert [
        k for k in page.evaluate("Object.keys(localStorage)") if k.startswith("presigned")
    ] == []
    s3 = local_s3(local_prod_stack)
    assert s3.list_multipart_uploads(Bucket=BUCKET, Prefix=SPACE).get("Uploads", []) == []


@pytest.mark.parametrize("status", [504, 409])
def test_a_completion_whose_answer_is_lost_is_found_stored(
    local_prod_stack, page, tmp_path, status
):
    # GIVEN a completion that reaches the API and S3, but whose answer the page never gets
    f = file_of(tmp_path, f"lost-{status}.pdf", b"%PDF-1.7\n", 6 * MiB)
    signed_in(page, local_prod_stack)

    def lose_the_answer(route: Any) -> None:
        route.fetch()  # completed in S3
        route.fulfill(status=status, content_type="application/json",
                      body='{"Code": "ConflictError", "Message": "lost"}')  # fmt: skip

    page.route("**/complete?*", lose_the_answer)
    page.set_input_files("#files", str(f))
    box = finished(page, f.name)
    # THEN the client asks the upload's status, finds it stored, and reports success
    assert box.get_attribute("data-status") == "uploaded", box.inner_text()
    assert stored(local_prod_stack, box.get_attribute("data-key")) == f.read_bytes()
    assert [
        k for k in page.evaluate("Object.keys(localStorage)") if k.startswith("presigned")
    ] == []


def test_the_page_names_its_stage_and_shows_sizes_for_people(local_prod_stack, page, tmp_path):
    small = file_of(tmp_path, "dot.png", b"\x89PNG\r\n\x1a\n", 3000)
    large = file_of(tmp_path, "scan.pdf", b"%PDF-1.7\n", 6 * MiB + 1)
    signed_in(page, local_prod_stack)
    assert (page.title(), page.locator("h1").inner_text()) == (
        "presigned-upload: local-prod", "Upload to the local-prod stage's bucket")  # fmt: skip
    page.set_input_files("#files", [str(small), str(large)])
    sizes = [finished(page, name).locator(".size").inner_text() for name in ("dot.png", "scan.pdf")]
    assert sizes == ["(2.9 KiB)", "(6.0 MiB)"]
