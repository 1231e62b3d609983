"""The `make run` upload page and Uppy, in headless Chromium, against the local stack.

Each test chooses real files in a real browser; the bytes go from the page to moto
through presigned URLs, crossing the API's and the bucket's CORS rules as on a real site.
"""

from __future__ import annotations

import pytest

from devstack.scanner import EICAR
from tests.browser.conftest import sample
from tests.stack import local_s3, start_stack, stop_stack
from tests.support import png

pytestmark = pytest.mark.browser
MiB = 1024**2
BUCKET = "uploads-local"


def stored_bytes(stack, key: str):
    return local_s3(stack).get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.mark.parametrize(
    ("name", "size", "mode"),
    [("small.txt", 1000, "single PUT"), ("large.bin", 6 * MiB + 1, "multipart, 2 parts")],
)
def test_the_page_uploads_small_and_multipart_files(stack, page, tmp_path, name, size, mode):
    f = sample(tmp_path, name, size)
    page.goto(stack.page)
    page.set_input_files("#files", str(f))
    box = page.locator(f'.upload[data-name="{name}"]')
    box.locator(".status").wait_for(timeout=60_000)
    assert box.get_attribute("data-status") == "uploaded"
    assert mode in box.locator(".result").inner_text()
    key = box.get_attribute("data-key")
    assert key == f"put_folder/{box.get_attribute('data-uuid')}.{name.rsplit('.', 1)[1]}"
    assert stored_bytes(stack, key) == f.read_bytes()
    assert box.locator("progress").evaluate("bar => bar.value === bar.max")


def test_the_page_shows_each_uploads_verdict(stack, page, tmp_path):
    # The verifier runs on S3's events (make run's event path): no polling of S3 here,
    # the page asks the API's status route until it answers.
    (tmp_path / "photo.png").write_bytes(png())
    (tmp_path / "fake.png").write_bytes(b"<!doctype html><script>alert(1)</script>")
    page.goto(stack.page)
    page.set_input_files("#files", [str(tmp_path / "photo.png"), str(tmp_path / "fake.png")])
    for name, verdict in (("photo.png", "verified"), ("fake.png", "rejected")):
        box = page.locator(f'.upload[data-name="{name}"][data-verdict]')
        box.wait_for(timeout=30_000)
        assert (box.get_attribute("data-status"), box.get_attribute("data-verdict")) == (
            "uploaded", verdict)  # fmt: skip
    assert page.locator('.upload[data-name="fake.png"] .verdict').inner_text() == (
        "· rejected: markup: the content is an HTML or SVG or XML document but declared image/png"
    )


def test_the_page_shows_scanning_then_the_malware_verdict(stack, page, tmp_path):
    # The `local` stage scans: the stack's stand-in for GuardDuty flags the EICAR file.
    (tmp_path / "eicar.txt").write_bytes(EICAR)
    (tmp_path / "notes.txt").write_bytes(b"clean words\n")
    page.goto(stack.page)
    page.set_input_files("#files", [str(tmp_path / "eicar.txt"), str(tmp_path / "notes.txt")])
    for name, verdict in (("eicar.txt", "rejected"), ("notes.txt", "verified")):
        box = page.locator(f'.upload[data-name="{name}"][data-verdict]')
        box.wait_for(timeout=30_000)
        # The page said "scanning" before the verdict came.
        assert (box.get_attribute("data-scanning"), box.get_attribute("data-verdict")) == (
            "shown", verdict)  # fmt: skip
    assert page.locator('.upload[data-name="eicar.txt"] .verdict').inner_text() == (
        "· rejected: malware: GuardDuty found EICAR-Test-File not a virus"
    )


def test_the_page_shows_a_refusal(stack, page, tmp_path):
    f = sample(tmp_path, "huge.iso", 10)
    page.goto(stack.page)
    page.route("**/put-url?*", lambda route: route.fulfill(
        status=400, content_type="application/json",
        body='{"Code": "BadRequestError", "Message": "size 10 is too large"}'))  # fmt: skip
    page.set_input_files("#files", str(f))
    result = page.locator('.upload[data-name="huge.iso"] .result.error')
    result.wait_for(timeout=30_000)
    assert result.inner_text() == "failed: 400 size 10 is too large"


def uppy_upload(page, uppy_page, stack, files):
    page.goto(uppy_page)
    assert page.evaluate("api => window.startUppy(api)", stack.api)
    page.set_input_files(".uppy-Dashboard-input >> nth=0", [str(f) for f in files])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    page.wait_for_function("window.uppyResults.length > 0", timeout=60_000)
    return page.evaluate("window.uppyResults[0]")


def test_uppy_dashboard_uploads_both_sizes_through_the_companion_routes(
    stack, page, uppy_page, tmp_path
):
    small = sample(tmp_path, "photo.jpg", 2000)
    large = sample(tmp_path, "movie.mp4", 6 * MiB + 5)
    result = uppy_upload(page, uppy_page, stack, [small, large])
    assert result["failed"] == []
    by_name = {f["name"]: f for f in result["successful"]}
    assert sorted(by_name) == ["movie.mp4", "photo.jpg"]
    assert (by_name["movie.mp4"]["parts"], by_name["photo.jpg"]["parts"]) == (2, 0)
    for f in (small, large):
        key = by_name[f.name]["key"]
        assert key.startswith("put_folder/")
        assert key.endswith("." + f.name.rsplit(".", 1)[1])
        assert stored_bytes(stack, key) == f.read_bytes()


@pytest.fixture(scope="module")
def quota_stack():
    stack = start_stack("local", env={"UPLOAD_QUOTA_FILES_PER_DAY": "1"})
    yield stack
    stop_stack(stack)


def test_the_page_shows_the_quota_and_a_429_once_without_retrying(quota_stack, page, tmp_path):
    first, second = sample(tmp_path, "one.txt", 100), sample(tmp_path, "two.txt", 100)
    page.goto(quota_stack.page)
    page.locator("#quota").wait_for(timeout=30_000)
    assert page.locator("#quota").inner_text().startswith("Your quota: 0 of 1 uploads today")
    page.set_input_files("#files", str(first))
    page.locator('.upload[data-name="one.txt"] .status').wait_for(timeout=30_000)
    page.wait_for_function("document.getElementById('quota').textContent.includes('1 of 1')")
    page.set_input_files("#files", str(second))
    box = page.locator('.upload[data-name="two.txt"][data-status="failed"]')
    box.wait_for(timeout=30_000)
    assert box.get_attribute("data-code") == "QuotaExceeded"
    message = box.locator(".result").inner_text()
    assert message.startswith("failed: 429 quota files_per_day reached: 1 of 1 uploads today; "
                              "it resets at ")  # fmt: skip
    # A quota is not throttling: the browser client asked once, and did not retry.
    assert quota_stack.text().count("/put-url?filename=two.txt") == 1
