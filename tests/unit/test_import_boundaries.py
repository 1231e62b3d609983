"""What a cold start loads: GET /put-url imports chalicelib/core only (and the verifier's
event pattern); each other route family is imported by its first request
(chalicelib/core/lazy.py). Measured in a fresh interpreter, as Lambda starts one."""

import ast
import json
import subprocess
import sys

from tests.support import PROJECT, free_port

COLD = """
import json, os, sys
os.environ.update({"AUTH_MODE": "none", "UPLOAD_BUCKET": "my-uploads", "UPLOAD_VERIFY": "true",
                   "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID",
                   "AWS_SECRET_ACCESS_KEY": "secret", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"})
before = set(sys.modules)

def event(method, path, body=None):
    return {"resource": path, "path": path, "httpMethod": method, "headers": {},
            "multiValueHeaders": {}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": body, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": method, "identity": {}}}

def new():
    global before
    loaded = set(sys.modules) - before
    before |= loaded
    return sorted(m for m in loaded if m.startswith("chalicelib") or m in WATCHED)

WATCHED = {"dataclasses", "inspect", "pathlib", "boto3", "filetype", "urllib.request"}
steps = {}
import app
steps["import"] = new()
steps["put-url"] = [app.app(event("GET", "/put-url"), None)["statusCode"], new()]
sign = event("POST", "/s3/sign", json.dumps({"method": "PATCH", "key": "k"}))
sign["headers"] = {"content-type": "application/json"}
steps["s3/sign"] = [app.app(sign, None)["statusCode"], new()]
app.verifier()
steps["verifier"] = new()
print(json.dumps(steps))
"""

CORE = [
    "chalicelib",
    "chalicelib.core",
    "chalicelib.core.auth",
    "chalicelib.core.checksums",
    "chalicelib.core.credentials",
    "chalicelib.core.errors",
    "chalicelib.core.jsonbody",
    "chalicelib.core.keys",
    "chalicelib.core.lazy",
    "chalicelib.core.logs",
    "chalicelib.core.media_types",
    "chalicelib.core.metrics",
    "chalicelib.core.presign",
    "chalicelib.core.rules",
    "chalicelib.core.s3",
    "chalicelib.core.settings",
    "chalicelib.core.signing",
    "chalicelib.core.sigv4",
    "chalicelib.core.tags",
    "chalicelib.verifier",  # the package only: the rule's event pattern
]


def test_a_cold_put_url_loads_only_the_core_and_each_family_loads_on_its_first_request():
    done = subprocess.run([sys.executable, "-c", COLD], cwd=PROJECT, capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    assert steps == {
        "import": CORE,
        # No dataclasses (nor inspect, which they import), no pathlib (the import holds
        # none either), no SDK: nothing new at all.
        "put-url": [200, []],
        "s3/sign": [400, ["chalicelib.multipart", "chalicelib.multipart.companion",
                          "chalicelib.multipart.service", "chalicelib.multipart.uppy_sign",
                          "dataclasses", "inspect"]],
        # Its clients are built on first use, filetype on the first sniff, and the
        # webhook module only on a stage with a webhook.
        "verifier": ["chalicelib.verifier.sniff", "chalicelib.verifier.verify"],
    }  # fmt: skip


def imported_packages(path) -> set[str]:
    """The chalicelib packages a module imports at its top level (TYPE_CHECKING aside)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if module and module.startswith("chalicelib."):
            found.add(module.split(".")[1])
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("chalicelib.")}
    return found


def test_the_core_never_imports_a_route_family():
    core = sorted((PROJECT / "chalicelib" / "core").glob("*.py"))
    assert [p.name for p in core if imported_packages(p) - {"core"}] == []
    assert len(core) == len(CORE) - 2  # every core module is on the cold path


def test_the_cores_named_tuples_have_real_annotations_not_strings():
    # typing.NamedTuple turns a string annotation (`from __future__ import annotations`)
    # into a ForwardRef, compiling it, at import: about 0.6 ms per cold start for the
    # core's classes on a whole core, 9 ms at 128 MB's share. So the modules that define
    # them evaluate their annotations.
    import importlib

    strings = {}
    for name in CORE:
        for value in vars(importlib.import_module(name)).values():
            fields = getattr(value, "__annotations__", {}) if hasattr(value, "_fields") else {}
            if any(isinstance(t, str) for t in fields.values()):
                strings[value.__qualname__] = sorted(fields)
    assert strings == {}
    assert hasattr(importlib.import_module("chalicelib.core.settings").Settings, "_fields")


SNAPSHOT = """
import json, os, sys
os.environ.update({"AUTH_MODE": "none", "UPLOAD_BUCKET": "my-uploads", "AWS_REGION": "eu-west-1",
                   "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
import app
print(json.dumps({
    "loaded": sorted(m for m in sys.modules if m.startswith(("chalicelib.multipart",
                     "chalicelib.uploads", "botocore.session", "boto3"))),
    "services built": app.services.cache_info().currsize,
}))
"""


def test_a_snapstart_init_loads_every_family_and_the_credential_chain_but_builds_nothing():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # as in Lambda: no credentials
    done = subprocess.run([sys.executable, "-c", SNAPSHOT], cwd=PROJECT, capture_output=True,
                          text=True, check=True, timeout=60, env=env)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "loaded": ["botocore.session", "chalicelib.multipart", "chalicelib.multipart.companion",
                   "chalicelib.multipart.service", "chalicelib.multipart.uppy_sign",
                   "chalicelib.uploads", "chalicelib.uploads.status"],
        # Built on the first request after a restore: nothing per container is snapshotted.
        "services built": 0,
    }  # fmt: skip


QUOTAS = """
import json, os, sys
os.environ.update({"AUTH_MODE": "none", "UPLOAD_BUCKET": "my-uploads", "AWS_REGION": "eu-west-1",
                   "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
                   "UPLOAD_QUOTA_FILES_PER_DAY": "5",
                   "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:%d"})
import app
before = set(sys.modules)
event = {"resource": "/put-url", "path": "/put-url", "httpMethod": "GET", "headers": {},
         "multiValueHeaders": {}, "queryStringParameters": None,
         "multiValueQueryStringParameters": None, "pathParameters": None,
         "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/put-url", "httpMethod": "GET", "identity": {}}}
answer = app.app(event, None)
loaded = set(sys.modules) - before
print(json.dumps([answer["statusCode"], json.loads(answer["body"])["Code"],
                  sorted(m for m in loaded if m.startswith("chalicelib")),
                  sorted(m.split(".")[0] for m in loaded if m.startswith(("boto", "http")))]))
"""


def test_with_quotas_a_cold_put_url_loads_the_quota_family_but_never_boto3():
    code = QUOTAS % free_port()  # nothing listens there: the table is unreachable
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    status, error, chalicelib, others = json.loads(done.stdout.strip().splitlines()[-1])
    # Fail closed: a named 503, no URL issued uncounted.
    assert (status, error) == (503, "ServiceUnavailableError")
    assert chalicelib == ["chalicelib.quotas", "chalicelib.quotas.dynamodb",
                          "chalicelib.quotas.ledger"]  # fmt: skip
    assert sorted(set(others)) == ["http"]  # http.client: no boto3, no botocore
