"""The quick path, `chalice deploy --stage <s>`, and plain `chalice package`, from the same
policy files as `make deploy`.

`chalice deploy` runs in-process against moto (tests/packaging/chalice_deploy_on_moto.py,
in a process of its own). moto's IAM refuses a malformed policy as IAM does. moto
cannot import Chalice's Swagger 2.0 document, so that script stops the deploy at API
Gateway's import and hands back the document instead: these tests assert everything up
to the API import, and the document it would have imported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.core.settings import malware_scan_on, quotas_on, verification_on
from infra.policies import api_policy, verifier_policy
from infra.stages import stage_config, stage_environment, stage_names
from tests.packaging.test_package import ROUTES

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOYED_STAGES = [s for s in stage_names() if not s.startswith("local")]
pytestmark = pytest.mark.packaging


def copy_project(root: Path) -> Path:
    """What `chalice deploy` reads, copied: it writes .chalice/deployed and deployments."""
    root.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy(PROJECT / name, root / name)
    for name in ("chalicelib", ".chalice"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns(
            "__pycache__", "deployments", "deployed"))  # fmt: skip
    return root


@pytest.fixture(scope="module", params=DEPLOYED_STAGES)
def deployed(request, tmp_path_factory):
    """(stage, what `chalice deploy --stage <stage>` made on moto)."""
    stage = request.param
    root = copy_project(tmp_path_factory.mktemp(f"deploy-{stage}") / "project")
    done = subprocess.run(
        [sys.executable, str(PROJECT / "tests" / "packaging" / "chalice_deploy_on_moto.py"),
         str(root), stage],
        capture_output=True, text=True, check=True, timeout=300,
        env={"PATH": str(BIN), "HOME": str(root)},
    )  # fmt: skip
    return stage, json.loads(done.stdout)


def test_the_shipped_deployable_stages_include_a_verifying_one():
    assert "dev" in DEPLOYED_STAGES
    assert [verification_on(stage_environment(s)) for s in DEPLOYED_STAGES] == [True, True]


def test_chalice_deploy_gets_as_far_as_the_api_import_which_moto_cannot_do(deployed):
    _, made = deployed
    assert made["error"] == "StoppedAtApiImport: moto cannot import Chalice's Swagger 2.0 document"


def test_iam_accepts_each_role_policy_as_the_policy_file_holds_it(deployed):
    stage, made = deployed
    api = f"presigned-upload-{stage}-api_handler"
    verifier = f"presigned-upload-{stage}-verify_upload"
    assert made["roles"] == {
        api: {api: api_policy(stage)},
        verifier: {verifier: verifier_policy(stage)},
    }
    files = {name: json.loads((PROJECT / ".chalice" / name).read_text()) for name in (
        f"policy-{stage}.json", f"policy-{stage}-verifier.json")}  # fmt: skip
    assert list(files.values()) == [api_policy(stage), verifier_policy(stage)]


def test_every_s3_statement_names_the_stages_bucket_and_nothing_is_left_unresolved(deployed):
    stage, made = deployed
    bucket = stage_environment(stage)["UPLOAD_BUCKET"]
    resources = [statement["Resource"] for policies in made["roles"].values()
                 for policy in policies.values() for statement in policy["Statement"]]  # fmt: skip
    s3 = [r for r in resources if r.startswith("arn:aws:s3:")]
    assert s3
    assert all(r == f"arn:aws:s3:::{bucket}" or r.startswith(f"arn:aws:s3:::{bucket}/") for r in s3)
    assert "${" not in json.dumps(made["roles"])
    # The verifier publishes to the stage's bus in whatever region and account it runs.
    assert "arn:aws:events:*:*:event-bus/default" in resources


def test_both_functions_exist_with_the_stages_settings(deployed):
    stage, made = deployed
    config = stage_config(stage)
    verifier = config["lambda_functions"]["verify_upload"]
    account = "arn:aws:iam::123456789012:role"
    functions = {name: {k: f[k] for k in ("Handler", "Role", "MemorySize", "Timeout", "Variables")}
                 for name, f in made["functions"].items()}  # fmt: skip
    assert functions == {
        f"presigned-upload-{stage}": {
            "Handler": "app.app", "Role": f"{account}/presigned-upload-{stage}-api_handler",
            "MemorySize": config["lambda_memory_size"], "Timeout": config["lambda_timeout"],
            "Variables": stage_environment(stage)},
        f"presigned-upload-{stage}-verify_upload": {
            "Handler": "app.verify_upload",
            "Role": f"{account}/presigned-upload-{stage}-verify_upload",
            "MemorySize": verifier["lambda_memory_size"], "Timeout": verifier["lambda_timeout"],
            "Variables": stage_environment(stage)},
    }  # fmt: skip
    # `chalice deploy` runs the functions on the Python that ran it (deploy.python is
    # `make deploy`'s): docs/deployment.md says so.
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert {f["Runtime"] for f in made["functions"].values()} == {runtime}


def test_the_verifiers_rule_names_the_bucket_and_invokes_the_verifier(deployed):
    stage, made = deployed
    env = stage_environment(stage)
    function = f"presigned-upload-{stage}-verify_upload"
    # With quotas (prod), a deleted upload's bytes leave its owner's stored total.
    kinds = ["Object Created", "Object Deleted"] if quotas_on(env) else ["Object Created"]
    bucket, prefix = env["UPLOAD_BUCKET"], env["UPLOAD_PREFIX"]
    s3 = {"source": ["aws.s3"], "detail-type": kinds, "detail": {
        "bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}}  # fmt: skip
    # With the malware scan (prod), GuardDuty's scan results for the prefix too.
    scans = {"source": ["aws.guardduty"],
             "detail-type": ["GuardDuty Malware Protection Object Scan Result"],
             "detail": {"s3ObjectDetails": {"bucketName": [bucket],
                                            "objectKey": [{"prefix": prefix}]}}}  # fmt: skip
    pattern = {"$or": [s3, scans]} if malware_scan_on(env) else s3
    assert made["rules"] == {f"{function}-event": {
        "EventPattern": pattern,
        "Targets": [f"arn:aws:lambda:eu-west-1:123456789012:function:{function}"],
    }}  # fmt: skip
    assert made["functions"][function]["Invokers"] == [{"Service": "events.amazonaws.com"}]


def test_the_api_document_it_would_import_has_every_route_on_the_api_function(deployed):
    stage, made = deployed
    document = made["api_document"]
    assert (document["swagger"], sorted(document["paths"])) == ("2.0", sorted(ROUTES))
    function = f"arn:aws:lambda:eu-west-1:123456789012:function:presigned-upload-{stage}"
    uris = {spec["x-amazon-apigateway-integration"]["uri"]
            for methods in document["paths"].values()
            for method, spec in methods.items() if method != "options"}  # fmt: skip
    assert uris == {"arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
                    f"{function}/invocations"}  # fmt: skip


@pytest.mark.parametrize("stage", stage_names())
def test_plain_chalice_package_passes_cfn_lint(stage, tmp_path):
    # What `chalice deploy` creates, as a template: the policy files as they are.
    root = copy_project(tmp_path / "project")
    subprocess.run([str(BIN / "chalice"), "package", "--stage", stage, str(tmp_path / "out")],
                   cwd=root, check=True, capture_output=True, timeout=300,
                   env={"PATH": str(BIN), "HOME": str(root),
                        "AWS_DEFAULT_REGION": "us-east-1"})  # fmt: skip
    lint = subprocess.run([str(BIN / "cfn-lint"), str(tmp_path / "out" / "sam.json")],
                          capture_output=True, text=True)  # fmt: skip
    assert (lint.returncode, lint.stdout) == (0, "")
