"""Headless Chromium (Debian's package) driven by Playwright, and Uppy's bundle.

The tests use the system's Chromium through ``executable_path`` rather than a browser that
Playwright downloads, so CI needs only the distribution's package. Without Chromium this
tier is skipped, unless REQUIRE_BROWSER=1 (which .ci/run sets after installing it), where
a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import uppy_bundle
from tests.support import free_port

# Chromium's sandbox does not run as root (CI containers are root), and a test browser
# makes no background calls (updates, sync, QUIC) that could fail or slow a run offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


def _missing(what: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} is required (REQUIRE_BROWSER=1)")
    pytest.skip(f"{what} is not installed (Debian: apt-get install chromium nodejs npm)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def uppy_page() -> Iterator[str]:
    """Uppy's packages, installed from the lockfile and bundled with esbuild, served on a
    page of their own origin; its URL."""
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm")
    assert npm is not None
    port = free_port()
    server = uppy_bundle.serve(uppy_bundle.build(npm), port)
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()


# The first bytes of a real file of each type, so that the verifier (on the `local`
# stage) finds what the extension declares; the rest of the sample is random.
SIGNATURES = {
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    "png": b"\x89PNG\r\n\x1a\n",
    "pdf": b"%PDF-1.7\n",
}


def sample(tmp_path: Path, name: str, size: int) -> Path:
    f = tmp_path / name
    ext = name.rsplit(".", 1)[-1]
    if ext == "txt":  # text: random bytes might start like a signature
        f.write_bytes(os.urandom(size).hex().encode()[:size])
        return f
    start = SIGNATURES.get(ext, b"")
    f.write_bytes(start + os.urandom(size - len(start)))
    return f
