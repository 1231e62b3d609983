"""The client CLI against the local stack: real processes, real bytes, real Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from devstack.scanner import EICAR
from presigned_upload.cli import main
from tests.stack import PROJECT, local_s3
from tests.support import Answer, ForwardingProxy, free_port, unsigned_jwt

pytestmark = pytest.mark.e2e
MiB = 1024**2
BUCKET = "uploads-local"


def cli(stack, tmp_path, *args: str, **popen) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "presigned_upload", "upload", *args, "--api", stack.api,
         "--state-dir", str(tmp_path / "state"), "--json", "--no-progress"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C must raise KeyboardInterrupt even if this test run ignores SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen,
    )  # fmt: skip


def run(stack, tmp_path, *args: str):
    proc = cli(stack, tmp_path, *args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, (json.loads(out) if out.strip() else {}), err


def stored(stack, key: str):
    return local_s3(stack).get_object(Bucket=BUCKET, Key=key)


def test_a_small_file_goes_in_one_put_with_type_size_and_sha256(stack, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello, bucket\n" * 100)
    code, result, err = run(stack, tmp_path, str(f))
    assert (code, err) == (0, "")
    assert result["mode"] == "single"
    assert result["key"] == f"put_folder/{result['UUID']}.txt"
    obj = stored(stack, result["key"])
    assert obj["Body"].read() == f.read_bytes()
    assert (obj["ContentType"], obj["Metadata"]) == ("text/plain", {"filename": "notes.txt"})
    assert result["etag"] == f'"{hashlib.md5(f.read_bytes()).hexdigest()}"'  # noqa: S324
    # moto stores no checksum, and the CLI reports only what S3 says it stored
    # (tests/e2e/test_strict_checksums.py runs the same against an S3 that does).
    assert result["checksum"] is None


def test_a_large_file_goes_in_parallel_parts_and_arrives_identical(stack, tmp_path):
    f = tmp_path / "video.mp4"
    # An MP4's signature: the stack's verifier, which runs on S3's event meanwhile, would
    # move random bytes named .mp4 to quarantine before this test reads them back.
    f.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(11 * MiB + 3))
    code, result, err = run(stack, tmp_path, str(f), "--threshold", "5", "--part-size", "5")
    assert (code, err) == (0, "")
    assert (result["mode"], result["parts"], result["resumed_parts"]) == ("multipart", 3, 0)
    assert result["etag"].endswith('-3"')
    obj = stored(stack, result["key"])
    assert obj["Body"].read() == f.read_bytes()
    assert obj["ContentType"] == "video/mp4"


def interrupt_after_parts(stack, proc, parts: int):
    """Wait until S3 holds ``parts`` parts of the CLI's upload, then press Ctrl-C."""
    s3 = local_s3(stack)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        if uploads:
            (upload,) = uploads
            held = s3.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
            if len(held.get("Parts", [])) >= parts:
                proc.send_signal(signal.SIGINT)
                return upload["UploadId"]
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the upload never got going")


@pytest.fixture
def big(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(120 * MiB))
    return f


def test_ctrl_c_leaves_the_upload_resumable_and_resume_finishes_it(stack, tmp_path, big):
    args = (str(big), "--threshold", "5", "--part-size", "5", "--concurrency", "1")
    proc = cli(stack, tmp_path, *args)
    upload_id = interrupt_after_parts(stack, proc, 3)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"resume with: presigned-upload upload {big} --api {stack.api} --resume" in err
    assert out == ""

    code, result, err = run(stack, tmp_path, *args, "--resume")
    assert (code, err) == (0, "")
    assert result["parts"] == 24
    assert 3 <= result["resumed_parts"] < 24  # the parts S3 held, checked against their MD5
    obj = stored(stack, result["key"])
    assert hashlib.sha256(obj["Body"].read()).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert upload_id not in json.dumps(local_s3(stack).list_multipart_uploads(Bucket=BUCKET))


def test_ctrl_c_with_abort_on_interrupt_deletes_the_upload(stack, tmp_path, big):
    args = (str(big), "--threshold", "5", "--part-size", "5", "--concurrency", "1",
            "--abort-on-interrupt")  # fmt: skip
    proc = cli(stack, tmp_path, *args)
    interrupt_after_parts(stack, proc, 1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "upload: interrupted; the multipart upload was aborted" in err
    assert "Uploads" not in local_s3(stack).list_multipart_uploads(Bucket=BUCKET)
    code, _, err = run(stack, tmp_path, str(big), "--resume")
    assert (code, err) == (1, f"upload: error: no interrupted upload of {big} to resume\n")


class FlakyAdapter(HTTPAdapter):
    """Drops the first ``failures`` part PUTs on the floor, as a bad network would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, request, *args, **kwargs):
        if request.method == "PUT" and "partNumber=" in request.url and self.failures:
            self.failures -= 1
            raise requests.ConnectionError("connection reset by peer")
        return super().send(request, *args, **kwargs)


def test_failed_parts_are_retried_with_backoff(stack, tmp_path, capsys):
    f = tmp_path / "flaky.bin"
    f.write_bytes(os.urandom(12 * MiB))
    http = requests.Session()
    adapter = FlakyAdapter(failures=2)
    http.mount("http://", adapter)
    code = main(
        ["upload", str(f), "--api", stack.api, "--threshold", "5", "--part-size", "5",
         "--json", "--no-progress", "--state-dir", str(tmp_path / "state")],
        http=http,
    )  # fmt: skip
    assert code == 0
    assert adapter.failures == 0
    result = json.loads(capsys.readouterr().out)
    assert stored(stack, result["key"])["Body"].read() == f.read_bytes()


def test_an_api_refusal_is_one_clear_line(stack, tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"x")
    code, _, err = run(stack, tmp_path, str(f), "--content-type", "not a type")
    assert code == 1
    assert err == (
        "upload: error: 400: content_type 'not a type' is not a media type; allowed: "
        "'type/subtype' with optional '; name=value' parameters, like 'image/png'\n"
    )


class RecordingAdapter(HTTPAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def send(self, request, *args, **kwargs):
        self.urls.append(request.url)
        return super().send(request, *args, **kwargs)


@pytest.mark.parametrize(
    ("option", "signed"),
    [(["--checksum", "none"], None), (["--checksum", "md5"], "content-md5"),
     (["--md5", "always"], "content-md5"), ([], "x-amz-checksum-sha256")],
)  # fmt: skip
def test_parts_carry_the_chosen_checksum(stack, tmp_path, capsys, option, signed):
    # auto (the default) is SHA-256; --md5 is the option's old name.
    f = tmp_path / "parts.bin"
    f.write_bytes(os.urandom(6 * MiB))
    http = requests.Session()
    recorder = RecordingAdapter()
    http.mount("http://", recorder)
    code = main(
        ["upload", str(f), "--api", stack.api, "--threshold", "5", "--part-size", "5",
         *option, "--json", "--no-progress", "--state-dir", str(tmp_path / "state")],
        http=http,
    )  # fmt: skip
    assert code == 0
    path = [u.split("?")[0] for u in recorder.urls]
    one_by_one = [u for u, p in zip(recorder.urls, path, strict=True) if p[-1].isdigit()]
    batches = [p for p in path if p.endswith("/batch")]
    # Parts with a checksum are signed one by one; without, all in one batch call.
    assert (len(one_by_one), len(batches)) == ((2, 0) if signed else (0, 1))
    parts = [u for u in recorder.urls if "partNumber=" in u]
    signed_headers = {parse_qs(urlsplit(u).query)["X-Amz-SignedHeaders"][0] for u in parts}
    # A part signed on its own also signs its size (Content-Length).
    expected = ["content-length", "host", signed] if signed else ["host"]
    assert signed_headers == {";".join(sorted(expected))}
    capsys.readouterr()


# --- failures are one line, and Ctrl-C during the completion ---------------------------


def cli_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed `presigned-upload` command, as a user runs it."""
    command = Path(sys.executable).with_name("presigned-upload")
    return subprocess.run([str(command), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT)  # fmt: skip


class HangUp(ThreadingHTTPServer):
    """An API that accepts each connection and closes it unanswered, counting them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HangUp)
        self.attempts = 0
        Thread(target=self.serve_forever, daemon=True).start()


class _HangUp(BaseHTTPRequestHandler):
    server: HangUp

    def do_GET(self) -> None:
        self.server.attempts += 1
        self.close_connection = True  # no answer: the client sees RemoteDisconnected

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_api_that_cannot_be_reached_is_retried_then_one_line(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello")
    closed = f"http://127.0.0.1:{free_port()}"
    done = cli_process("upload", str(f), "--api", closed, "--retries", "1", "--no-progress")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", (
        f"upload: error: could not reach the API at {closed} (ConnectionRefusedError) "
        "after 2 attempts\n"))  # fmt: skip
    hanging = HangUp()
    api = f"http://127.0.0.1:{hanging.server_address[1]}"
    done = cli_process("upload", str(f), "--api", api, "--retries", "2", "--no-progress")
    hanging.shutdown()
    assert (done.returncode, done.stderr) == (1, (
        f"upload: error: could not reach the API at {api} (RemoteDisconnected) after 3 "
        "attempts\n"))  # fmt: skip
    assert hanging.attempts == 3  # --retries 2: three attempts, then the one line


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--api", "127.0.0.1:8000"], "--api '127.0.0.1:8000' is not a URL; allowed: "
      "http(s)://host[:port][/path], like http://127.0.0.1:8000"),
     (["--token", "eyJ\nx"], "the token holds characters an Authorization header cannot "
      "carry; allowed: printable ASCII, like a JWT"),
     (["--token", "jwt-ü"], "the token holds characters an Authorization header cannot "
      "carry; allowed: printable ASCII, like a JWT"),
     (["--wait", "--wait-timeout", "0"], "--wait-timeout: seconds, more than 0 and at most "
      "86400"),
     (["--wait-timeout", "nan"], "--wait-timeout: seconds, more than 0 and at most 86400"),
     (["--wait-timeout", "30"], "--wait-timeout without --wait; allowed: --wait "
      "--wait-timeout SECONDS")],
)  # fmt: skip
def test_a_malformed_option_is_one_line_and_no_request(tmp_path, args, message):
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello")
    done = cli_process("upload", str(f), *args, "--no-progress")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"upload: error: {message}\n")


def test_version_is_the_installed_packages():
    done = cli_process("--version")
    assert (done.returncode, done.stdout) == (
        0,
        f"presigned-upload {version('presigned-upload-client')}\n",
    )


class Interrupter:
    """What a proxy in front of the API does: once the CLI's completion has reached the
    API (so S3 completes the upload), press Ctrl-C in the CLI before it hears the answer."""

    def __init__(self) -> None:
        self.cli: subprocess.Popen[str] | None = None

    def __call__(self, method: str, path: str, forward: Callable[[], Answer]) -> Answer | None:
        answer = forward()
        if path.split("?")[0].endswith("/complete") and self.cli is not None:
            cli, self.cli = self.cli, None
            cli.send_signal(signal.SIGINT)
            cli.wait(timeout=30)
            return None  # it never hears the answer
        return answer


def test_ctrl_c_during_the_completion_prints_the_hint_and_resume_reports_the_upload(
    stack, tmp_path
):
    # GIVEN a multipart upload through a proxy that presses Ctrl-C once S3 has completed it
    f = tmp_path / "movie.bin"
    f.write_bytes(os.urandom(6 * MiB))
    interrupter = Interrupter()
    proxy = ForwardingProxy(stack.api, interrupter)
    state = tmp_path / "state"
    args = ["upload", str(f), "--api", proxy.url, "--threshold", "5", "--part-size", "5",
            "--state-dir", str(state), "--token", "opaque-token", "--no-progress"]  # fmt: skip
    command = [str(Path(sys.executable).with_name("presigned-upload")), *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    interrupter.cli = proc
    out, err = proc.communicate(timeout=120)
    # THEN the CLI says how to resume, keeping what it needs but not the token
    assert (proc.returncode, out) == (130, "")
    assert err.splitlines()[-1] == (
        f"upload: interrupted; resume with: presigned-upload upload {f} --api {proxy.url} "
        f"--resume --state-dir {state} (with the same --token, or UPLOAD_API_TOKEN set)"
    )
    assert "opaque-token" not in err
    # WHEN it is resumed, THEN it finds the upload S3 completed, and says so
    done = cli_process(*args, "--resume", "--json")
    proxy.shutdown()
    assert (done.returncode, done.stderr) == (0, "")
    result = json.loads(done.stdout)
    assert (result["already_complete"], result["size"], result["parts"]) == (True, 6 * MiB, 2)
    assert stored(stack, result["key"])["Body"].read() == f.read_bytes()
    assert list(state.iterdir()) == []  # nothing left to resume
    again = cli_process(*args, "--resume")
    assert (again.returncode, again.stderr) == (
        1,
        f"upload: error: no interrupted upload of {f} to resume\n",
    )


# --- --wait: the verdict ---------------------------------------------------------------


def test_wait_reports_verified_and_exits_0(stack, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"a clean text file\n")
    code, result, err = run(stack, tmp_path, str(f), "--wait")
    assert (code, err) == (0, "")
    # The `local` stage checks the type, then waits for its (stand-in) malware scan.
    verdict = result["verdict"]
    assert (verdict["UUID"], verdict["status"], verdict["size"]) == (
        result["UUID"], "verified", 18)  # fmt: skip


def test_wait_exits_3_on_a_rejection_and_says_why(stack, tmp_path):
    f = tmp_path / "eicar.txt"
    f.write_bytes(EICAR)
    code, result, err = run(stack, tmp_path, str(f), "--wait")
    reason = "malware: GuardDuty found EICAR-Test-File not a virus"
    assert (code, err) == (3, f"upload: rejected: {reason}\n")
    assert result["verdict"] == {"UUID": result["UUID"], "status": "rejected", "reason": reason}


def test_wait_without_a_verdict_in_time_exits_4(cognito_stack, tmp_path):
    # local-cognito verifies nothing: its uploads stay "uploaded".
    f = tmp_path / "notes.txt"
    f.write_bytes(b"words\n")
    proc = subprocess.run(
        [sys.executable, "-m", "presigned_upload", "upload", str(f), "--api", cognito_stack.api,
         "--token", unsigned_jwt({"sub": "waiter", "cognito:username": "waiter"}),
         "--wait", "--wait-timeout", "1.5", "--no-progress"],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr == "upload: no verdict within 1.5 s (status: uploaded)\n"
    assert proc.stdout.startswith(f"uploaded {f} -> put_folder/waiter/")
