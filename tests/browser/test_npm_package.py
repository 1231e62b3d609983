"""browser/ as the npm package presigned-upload-browser, as a web developer gets it: packed
with `npm pack`, installed from the tarball into a copy of the React example
(examples/react/), type-checked with `tsc --strict`, bundled with esbuild, and driven in
Chromium against a local stack on the strict S3, which verifies each SHA-256 and stores it.

The stack is `local-cognito` with verification and one upload a day per user, so each
test signs in as a user of its own (`?token=`): the 429 QuotaExceeded is real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.browser import uppy_bundle
from tests.browser.conftest import _missing
from tests.stack import PROJECT, Stack, local_s3, start_stack, stop_stack
from tests.support import free_port, unsigned_jwt

pytestmark = [pytest.mark.browser, pytest.mark.strict]
MiB = 1024**2
BUCKET = "uploads-local"
PACKAGE = PROJECT / "browser"
EXAMPLE = PROJECT / "examples" / "react"
EVERY_OPTION = PROJECT / "tests" / "browser" / "npm" / "every-option.ts"
STAGE_ENV = {"UPLOAD_VERIFY": "true", "UPLOAD_QUOTA_FILES_PER_DAY": "1"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        _missing("npm")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def tarball(npm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack")
    done = run(npm, "pack", "--json", "--pack-destination", str(out), cwd=PACKAGE)
    (packed,) = json.loads(done.stdout)
    return out / str(packed["filename"])


@pytest.fixture(scope="module")
def app(npm: str, tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The React example, installed with the tarball in place of its `file:` link, its
    other dependencies from its lock file, and the type check's consumer beside it."""
    root = tmp_path_factory.mktemp("consumer") / "app"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    manifest = json.loads((root / "package.json").read_text())
    manifest["dependencies"]["presigned-upload-browser"] = f"file:{tarball}"
    (root / "package.json").write_text(json.dumps(manifest, indent=2))
    run(npm, "install", "--no-audit", "--no-fund", cwd=root)
    shutil.copy(EVERY_OPTION, root / "src" / "every-option.ts")
    return root


@pytest.fixture(scope="module")
def bundle(npm, app) -> Iterator[str]:
    run(npm, "run", "build", cwd=app)
    port = free_port()
    server = uppy_bundle.serve(app / "dist", port)
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    stack = start_stack("local-cognito", s3="strict", env=STAGE_ENV)
    yield stack
    stop_stack(stack)


def test_the_package_ships_its_module_types_and_worker_and_nothing_else(tarball):
    with tarfile.open(tarball) as packed:
        names = sorted(packed.getnames())
        manifest = json.loads(packed.extractfile("package/package.json").read())  # type: ignore[union-attr]
        license_text = packed.extractfile("package/LICENSE").read()  # type: ignore[union-attr]
    assert names == ["package/LICENSE", "package/package.json", "package/presigned-upload.d.ts",
                     "package/presigned-upload.js", "package/sha256-worker.js"]  # fmt: skip
    assert license_text == (PROJECT / "LICENSE").read_bytes()  # the project's, not a fork
    assert (manifest["name"], manifest["license"], manifest["type"], manifest["sideEffects"]) == (
        "presigned-upload-browser", "MIT", "module", False)  # fmt: skip
    assert manifest["exports"]["."] == {"types": "./presigned-upload.d.ts",
                                        "default": "./presigned-upload.js"}  # fmt: skip
    assert "dependencies" not in manifest


def test_a_consumer_type_checks_in_strict_mode(app):
    tsc = app / "node_modules" / ".bin" / "tsc"
    done = subprocess.run([str(tsc), "--noEmit", "-p", "."], cwd=app, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "")
    # The check is real: a misuse the types know of fails it.
    wrong = app / "src" / "wrong.ts"
    wrong.write_text('import { Uploader } from "presigned-upload-browser";\n'
                     'new Uploader({ api: 1 });\n')  # fmt: skip
    try:
        failed = subprocess.run([str(tsc), "--noEmit", "-p", "."], cwd=app,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        wrong.unlink()
    assert failed.returncode != 0
    assert "src/wrong.ts(2," in failed.stdout
    assert "Type 'number' is not assignable to type 'string'" in failed.stdout


def token(user: str) -> str:
    return unsigned_jwt({"sub": user, "cognito:username": user})


def open_app(page, bundle: str, stack: Stack, user: str) -> list[Any]:
    """The bundled app, signed in as ``user``; the Workers it starts, as they start."""
    workers: list[Any] = []
    page.on("worker", lambda worker: workers.append(worker))
    page.goto(bundle + "?" + urlencode({"api": stack.api, "token": token(user)}))
    return workers


def outcome(page) -> dict[str, str]:
    box = page.locator("#outcome")
    box.wait_for(timeout=120_000)
    found: dict[str, str] = box.evaluate("e => ({...e.dataset, text: e.textContent})")
    return found


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_a_7_mib_file_goes_through_the_bundle_in_parts_hashed_by_the_bundled_worker(
    page, bundle, stack, tmp_path
):
    data = b"%PDF-1.7\n" + os.urandom(7 * MiB - 9)
    f = tmp_path / "report.pdf"
    f.write_bytes(data)
    worker_scripts: list[int] = []

    def seen(response: Any) -> None:
        if response.url.endswith("/sha256-worker.js"):
            worker_scripts.append(response.status)

    page.on("response", seen)
    workers = open_app(page, bundle, stack, "npm-seven")
    page.set_input_files("#file", str(f))
    found = outcome(page)
    # Two parts (5 MiB and 2 MiB), each with its SHA-256: S3's composite checksum.
    parts = [data[: 5 * MiB], data[5 * MiB :]]
    digests = b"".join(hashlib.sha256(p).digest() for p in parts)
    composite = f"{b64(hashlib.sha256(digests).digest())}-2"
    assert (found["phase"], found["mode"], found["verdict"], found["checksum"]) == (
        "done", "multipart", "verified", composite)  # fmt: skip
    assert found["text"] == "2 parts, verified"
    # The Worker came from the bundle's own output, next to main.js.
    assert [w.url for w in workers] == [f"{bundle}sha256-worker.js"]
    assert worker_scripts == [200]
    # What S3 stored: these bytes, and the checksum it verified.
    key = f"put_folder/npm-seven/{found['uuid']}.pdf"
    head = local_s3(stack).head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head["ContentLength"], head["ChecksumSHA256"]) == (len(data), composite)
    got = local_s3(stack).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_cancel_stops_the_upload_and_aborts_it_in_s3(page, bundle, stack, tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(40 * MiB))
    open_app(page, bundle, stack, "npm-cancel")
    page.set_input_files("#file", str(f))
    page.wait_for_function("document.querySelector('progress')?.value > 0", timeout=60_000)
    page.click("#cancel")
    found = outcome(page)
    assert (found["phase"], found["text"]) == ("cancelled", "Cancelled.")
    # Cancelled while parts were going out: no upload left in S3, and no object.
    s3 = local_s3(stack)
    listed = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="put_folder/npm-cancel/")
    assert listed.get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="put_folder/npm-cancel/")


def test_a_quota_refusal_shows_its_figures(page, bundle, stack, tmp_path):
    f = tmp_path / "note.txt"
    f.write_bytes(b"first of the day\n")
    open_app(page, bundle, stack, "npm-quota")
    page.set_input_files("#file", str(f))
    assert outcome(page)["verdict"] == "verified"
    f.write_bytes(b"second of the day\n")
    page.reload()
    page.set_input_files("#file", str(f))
    found = outcome(page)
    assert (found["phase"], found["code"]) == ("failed", "QuotaExceeded")
    assert found["text"].startswith("Quota reached: 1 of 1 (files_per_day); it resets at ")
