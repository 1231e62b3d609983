"""The client is a package of its own: `pip install ./client` into a clean venv gives a
working `presigned-upload` command, with no chalice, boto3 or server code installed."""

from __future__ import annotations

import json
import subprocess
import venv

import pytest

from tests.stack import local_s3
from tests.support import PROJECT

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory):
    home = tmp_path_factory.mktemp("client-venv")
    venv.create(home, with_pip=True)
    install = subprocess.run(
        [home / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(PROJECT / "client")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return home


def test_the_installed_client_holds_no_server_code(client_venv):
    script = (
        "import importlib.util as u\n"
        "print([m for m in ('chalice', 'chalicelib', 'boto3', 'botocore', 'moto') "
        "if u.find_spec(m)])"
    )
    run = subprocess.run(
        [client_venv / "bin" / "python", "-c", script],
        cwd=client_venv, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (run.returncode, run.stdout) == (0, "[]\n")


def test_the_installed_command_uploads_a_file(client_venv, stack, tmp_path):
    payload = b"uploaded by the installed client\n" * 100
    path = tmp_path / "notes.txt"
    path.write_bytes(payload)
    run = subprocess.run(
        [client_venv / "bin" / "presigned-upload", "upload", str(path), "--api", stack.api,
         "--json", "--no-progress", "--state-dir", str(tmp_path / "state")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (run.returncode, run.stderr) == (0, "")
    result = json.loads(run.stdout)
    assert (result["mode"], result["size"]) == ("single", len(payload))
    stored = local_s3(stack).get_object(Bucket="uploads-local", Key=result["key"])
    assert (stored["Body"].read(), stored["ContentType"]) == (payload, "text/plain")


def test_the_python_api_is_importable_as_documented(client_venv):
    script = (
        "from presigned_upload import Uploader, Options, ApiError, TransferError\n"
        "import inspect; print(list(inspect.signature(Uploader).parameters)[:2])"
    )
    run = subprocess.run([client_venv / "bin" / "python", "-c", script],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (run.returncode, run.stdout) == (0, "['api', 'token']\n")


def test_the_installed_client_carries_the_projects_mit_license(client_venv):
    # The project's LICENSE, and the client's copy that its wheel ships, are one text.
    text = (PROJECT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert (PROJECT / "client" / "LICENSE").read_text() == text
    script = (
        "from importlib import metadata as m; d = m.distribution('presigned-upload-client'); "
        "print(d.metadata['License-Expression']); print(d.read_text('licenses/LICENSE'))"
    )
    run = subprocess.run([client_venv / "bin" / "python", "-c", script], cwd=client_venv,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (run.returncode, run.stdout) == (0, f"MIT\n{text}\n")
