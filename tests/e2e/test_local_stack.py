"""`make run` for real: the launcher starts moto's server and `chalice local` as subprocesses
on free ports, and real bytes go through the issued URL over HTTP, uploaded by curl.

moto accepts any signature, so this proves the plumbing (routes, key, bucket, CORS, process
handling), not S3's signature checks; tests/unit/test_presign.py pins the URL itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.stack import local_s3, start_stack, stop_stack
from tests.support import free_port, unsigned_jwt

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_curl_flow_stores_the_file_at_the_returned_key(stack, tmp_path):
    curl = shutil.which("curl")
    assert curl, "the README's flow uses curl; install it (apt-get install curl)"
    body = requests.get(f"{stack.api}/put-url", timeout=10).json()
    assert body["key"] == f"put_folder/{body['UUID']}"
    payload = b"hello from curl\n" + bytes(range(256)) * 64
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)

    put = subprocess.run(
        [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
         "--upload-file", str(upload), body["PUT_URL"]],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip

    assert put.stdout == "200"
    stored = local_s3(stack).get_object(Bucket="uploads-local", Key=body["key"])
    assert stored["Body"].read() == payload


def test_bucket_cors_lets_a_browser_put_and_read_the_etag(stack):
    body = requests.get(f"{stack.api}/put-url", timeout=10).json()
    preflight = requests.options(
        body["PUT_URL"],
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,x-amz-checksum-sha256",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    # The rule's origin is '*'; moto echoes the caller's origin, which browsers accept too.
    # (moto answers any preflight method with the rule's list; real S3 refuses one not in it.)
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert preflight.headers["Access-Control-Allow-Methods"] == "PUT, POST, GET, DELETE"
    assert preflight.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-checksum-sha256"


def test_api_preflight_is_open_to_the_configured_origin(stack):
    preflight = requests.options(
        f"{stack.api}/put-url",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"


def test_local_stage_says_loudly_once_that_it_has_no_authorization(stack):
    assert "devstack: WARNING: AUTH_MODE=none: no authorization; anyone who can reach" in (
        stack.text()
    )
    # Once, in the banner: not again from each process that imports app.py (which says it
    # where no launcher does: `chalice package`, a Lambda's log).
    assert stack.text().count("AUTH_MODE=none") == 1


def readme_blocks() -> list[str]:
    """The README's two shell blocks after "devstack: ready", as a newcomer pastes them."""
    text = (PROJECT / "README.md").read_text()
    after = text[text.index("When it prints `devstack: ready`") :]
    return [block.split("\n", 1)[1] for block in after.split("```")[1:4:2]]


def test_the_readmes_flow_as_written_uploads_and_reads_the_verdict(stack):
    # GIVEN the README's commands, pointed at this stack; the status asked again until
    # the verifier has answered ("a moment later")
    ticket, status = (b.replace("localhost:8000", urlsplit(stack.api).netloc)
                      for b in readme_blocks())  # fmt: skip
    ask = status.split("#")[0].strip()
    script = (f"{ticket}\nfor _ in $(seq 100); do out=$({ask}); "
              'case "$out" in *verified*) break;; esac; sleep 0.2; done; echo "$out"')  # fmt: skip
    # WHEN they run in bash, from the project (README.md is the file uploaded)
    done = subprocess.run(["bash", "-c", script], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    # THEN the file is stored at the ticket's key, and its status says verified
    assert done.returncode == 0, done.stderr
    first, *_, last = done.stdout.splitlines()
    ticket_answer, status_answer = json.loads(first), json.loads(last)
    assert (status_answer["UUID"], status_answer["key"], status_answer["status"]) == (
        ticket_answer["UUID"], ticket_answer["key"], "verified")  # fmt: skip
    stored = local_s3(stack).get_object(Bucket="uploads-local", Key=ticket_answer["key"])
    assert stored["Body"].read() == (PROJECT / "README.md").read_bytes()


def test_cognito_stage_refuses_a_request_without_a_token_with_cors(cognito_stack):
    response = requests.get(
        f"{cognito_stack.api}/put-url", headers={"Origin": "http://localhost:5173"}, timeout=10
    )
    assert (response.status_code, response.json()) == (
        401,
        {
            "Code": "UnauthorizedError",
            "Message": "no authenticated caller (AUTH_MODE=cognito); "
            "send a Cognito user pool token in the Authorization header",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cognito_stage_preflight_is_open_and_allows_the_authorization_header(cognito_stack):
    preflight = requests.options(
        f"{cognito_stack.api}/put-url",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"].split(",")


def test_cognito_stage_uploads_into_the_token_subjects_space_only(cognito_stack):
    alice, bob = id_token("7d1c9a4e-alice"), id_token("0f9e8d7c-bob")
    ticket = requests.get(
        f"{cognito_stack.api}/put-url?filename=notes.txt",
        headers={"Authorization": alice},
        timeout=10,
    ).json()
    assert ticket["key"] == f"put_folder/7d1c9a4e-alice/{ticket['UUID']}.txt"
    put = requests.put(ticket["PUT_URL"], data=b"notes", headers=ticket["headers"], timeout=10)
    assert put.status_code == 200

    def download(token):
        return requests.get(
            f"{cognito_stack.api}/uploads/{ticket['UUID']}/download-url",
            headers={"Authorization": token},
            timeout=10,
        )

    assert download(bob).status_code == 404
    mine = download(alice)
    assert mine.status_code == 200
    assert requests.get(mine.json()["url"], timeout=10).content == b"notes"


def id_token(sub: str) -> str:
    return unsigned_jwt({"sub": sub, "cognito:username": sub})


def test_logs_never_contain_a_signed_url(stack):
    requests.get(f"{stack.api}/put-url", timeout=10).raise_for_status()
    assert stack.wait_for("GET /put-url", timeout=10)
    assert "X-Amz-Signature" not in stack.text()
    assert "X-Amz-Credential" not in stack.text()


def test_ctrl_c_stops_both_processes_cleanly():
    stack = start_stack("local")  # its own: it takes the stack down
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=20) == 0
    assert "devstack: stopping" in stack.text()
    for url in (stack.api, stack.s3):
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_launcher_refuses_a_bad_setting_with_one_clear_line():
    env = {**os.environ, "UPLOAD_BUCKET_REGION": "Europe"}
    run = subprocess.run(
        [sys.executable, "-m", "devstack", "--s3-port", str(free_port())],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == (
        "devstack: error: UPLOAD_BUCKET_REGION='Europe' is not an AWS region; allowed: names "
        "like 'eu-west-1' (see .chalice/config.json, stage 'local')\n"
    )
    assert "Traceback" not in run.stdout + run.stderr


def test_launcher_against_an_unreachable_external_s3_says_so_in_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "devstack", "--s3-endpoint", "http://127.0.0.1:9",
         "--api-port", str(free_port()), "--web-port", str(free_port())],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.startswith(
        "devstack: error: cannot prepare bucket uploads-local at http://127.0.0.1:9: "
        'Could not connect to the endpoint URL: "http://127.0.0.1:9/uploads-local"'
    )
    assert "Traceback" not in run.stdout + run.stderr


def test_an_exported_setting_wins_over_the_stage_config():
    # .chalice/config.json sets UPLOAD_URL_EXPIRES=300 at its top level
    stack = start_stack("local", env={"UPLOAD_URL_EXPIRES": "77"})
    try:
        body = requests.get(f"{stack.api}/put-url", timeout=10).json()
    finally:
        stop_stack(stack)
    assert body["expires_in"] == 77


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.%%%.c", "a.eyJ9.c", "a.WzFd.c", "Bearer", "a." + "e" * 5 + ".c"],
)  # fmt: skip
def test_a_malformed_token_is_a_401_not_a_dropped_connection(cognito_stack, token):
    # Chalice's local authorizer raised on these, and `chalice local` closed the
    # connection with no answer; API Gateway answers 401.
    response = requests.get(f"{cognito_stack.api}/put-url", headers={"Authorization": token},
                            timeout=10)  # fmt: skip
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
