"""Schemathesis against `chalice local`: no input gives a 5xx, every response matches
openapi.yaml. Bounded for CI (a fixed seed and example count, about 15 s); `make fuzz`
runs a longer, random one.

Excluded check: positive_data_acceptance. Many schema-valid inputs are refused by design:
a key not issued to the caller, a type outside the allowlist, an upload id S3 does not
know, a filename with control characters. The document says so in words; it cannot in
JSON Schema without repeating the validation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.stack import PROJECT

pytestmark = pytest.mark.e2e
FUZZ_ARGS = ["--exclude-checks", "positive_data_acceptance"]
# CI: fixed and bounded. `make fuzz`: FUZZ_MAX_EXAMPLES=300 FUZZ_SEED=random.
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "25")
SEED = os.environ.get("FUZZ_SEED", "20261129")


def test_fuzzing_finds_no_server_error_and_no_response_outside_the_spec(stack, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", str(PROJECT / "openapi.yaml"),
         "--url", stack.api, *FUZZ_ARGS, "--max-examples", MAX_EXAMPLES,
         *([] if SEED == "random" else ["--seed", SEED]),
         "--report-dir", str(tmp_path), "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:]
    assert "passed" in run.stdout


# Beyond schemathesis' generator: deep, non-UTF-8 and oversized bodies, too much metadata,
# a filename over S3's metadata limit, a huge path id; over real HTTP to `chalice local`.
HOSTILE = [
    ("POST", "/s3/multipart", "[" * 1000 + "]" * 1000),
    ("POST", "/s3/multipart/u1/complete?key=put_folder/x",
     '{"parts":' + "[" * 900 + "]" * 900 + "}"),
    ("POST", "/s3/multipart", b'{"filename": "\xff\xfe.bin"}'),
    ("POST", "/s3/multipart",
     json.dumps({"filename": "a", "metadata": {str(n): n for n in range(500)}})),
    ("GET", "/s3/params?" + "&".join(f"metadata[{n}]=v" for n in range(60)), None),
    ("GET", "/put-url?filename=" + "%F0%9F%98%80" * 250, None),
    ("GET", "/uploads/" + "x" * 5000, None),
    ("POST", "/s3/sign", "{" + '"a":{' * 600 + "}" * 601),
    ("POST", "/s3/sign", json.dumps({"method": "PUT", "key": "k" * 5000})),
    ("POST", "/s3/sign", json.dumps({"method": "POST", "key": "a\udc00.png"})),
    ("POST", "/s3/sign", json.dumps({"method": "PUT", "key": "put_folder/x", "uploadId": "u",
                                     "partNumber": 10**30})),
    ("POST", "/uploads/" + "x" * 5000 + "/claim", "[" * 1000 + "]" * 1000),
    ("POST", "/uploads/%ED%A0%80/claim", None),  # a lone surrogate, UTF-8 encoded
    ("POST", "/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b/claim?" + "x=1&" * 500, None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), HOSTILE)
def test_hostile_requests_get_a_4xx_that_says_why_never_a_5xx(stack, method, path, body):
    response = requests.request(
        method, stack.api + path, data=body, headers={"Content-Type": "application/json"},
        timeout=30,
    )  # fmt: skip
    assert (400 <= response.status_code < 500, sorted(response.json())) == (
        True,
        ["Code", "Message"],
    )
