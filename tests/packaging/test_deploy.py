"""`make deploy`: the offline checks and plan, and the AWS calls' wiring.

The dry run is run as a user runs it, in a copy of the project, with no credentials and
every AWS endpoint pointed at a closed port. The AWS part runs against moto's server for
S3 and STS, and a Stubber for CloudFormation (moto's needs Docker and a dozen packages):
the test pins the order of the calls and that the API stack gets the bucket stack's
outputs.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from devstack.moto_server import Server
from infra.deploy import Deployer
from infra.pythons import find_python
from tests.support import free_port

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.packaging


@pytest.fixture
def project(tmp_path):
    """A copy of the project to edit config.json in; returns (root, write(stage, env))."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy(PROJECT / name, root / name)
    for name in ("chalicelib", "infra", ".chalice"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns(
            "__pycache__", "deployments"))  # fmt: skip
    config_path = root / ".chalice" / "config.json"

    def write(
        stage: str,
        env: dict[str, str],
        *,
        like: str | None = None,
        deploy: dict[str, object] | None = None,
        policies: bool = True,
    ) -> None:
        """Set ``env`` on ``stage`` (a new stage copied from ``like``), merge ``deploy``
        into its deploy object, and write its policy files as `make policies` does."""
        config = json.loads(config_path.read_text())
        if like is not None:
            config["stages"][stage] = copy.deepcopy(config["stages"][like])
            config["stages"][stage]["iam_policy_file"] = f"policy-{stage}.json"
            functions = config["stages"][stage].get("lambda_functions", {})
            for function in functions.values():
                function["iam_policy_file"] = f"policy-{stage}-verifier.json"
        config["stages"][stage]["environment_variables"].update(env)
        config["stages"][stage].setdefault("deploy", {}).update(deploy or {})
        config_path.write_text(json.dumps(config))
        if policies:
            subprocess.run([sys.executable, "-m", "infra.policies"], cwd=root, check=True,
                           capture_output=True)  # fmt: skip

    return root, write


# make package compiles the zip's bytecode with the runtime's Python (python3.12 in every
# stage here), and says so when this machine has none.
RUNTIME_PYTHON = find_python((3, 12))
NO_BYTECODE = [] if RUNTIME_PYTHON else [
    "warning: no python3.12 here to compile the zip's modules with: it ships without "
    "bytecode, so each cold start compiles them (docs/benchmarks.md)"]  # fmt: skip


def run_deploy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    closed = f"http://127.0.0.1:{free_port()}"
    path = [str(Path(sys.executable).parent)]
    path += [str(Path(RUNTIME_PYTHON).parent)] if RUNTIME_PYTHON else []
    env = {"PATH": os.pathsep.join(path), "HOME": str(root),
           "AWS_ENDPOINT_URL": closed, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "infra.deploy", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


OWN_PROD = {
    "UPLOAD_BUCKET": "acme-uploads-prod",
    "CORS_ALLOW_ORIGIN": "https://app.acme.com",
    "COGNITO_USER_POOL_ARNS": "arn:aws:cognito-idp:eu-west-1:210987654321:userpool/eu-west-1_Ab12",
}


def test_prod_as_shipped_is_refused_naming_every_placeholder(project):
    root, _ = project
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "prod cannot be deployed:",
        "- COGNITO_USER_POOL_ARNS='arn:aws:cognito-idp:us-east-1:123456789012:userpool/"
        "us-east-1_EXAMPLE' is this repository's example; set your own in .chalice/config.json",
        "- CORS_ALLOW_ORIGIN='https://app.example.com' is this repository's example; set "
        "your own in .chalice/config.json",
        "- UPLOAD_BUCKET='example-uploads-prod' is this repository's example; set your own "
        "in .chalice/config.json",
    ]
    assert not (root / "build").exists()


def test_a_wildcard_origin_is_refused_on_prod(project):
    root, write = project
    write("prod", {**OWN_PROD, "CORS_ALLOW_ORIGIN": "*"})
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()[1:]) == (2, [
        "- CORS_ALLOW_ORIGIN='*' on prod lets every site's pages upload with your users' "
        "URLs; set the one origin of your app, like https://app.acme.com, or "
        '"allow_any_origin": true in the stage\'s "deploy" object'])  # fmt: skip


OPEN = ('- AUTH_MODE=\'none\' on {} lets anyone on the internet get upload URLs into your '
        'bucket; set cognito or iam, or "allow_open": true in the stage\'s "deploy" object if '
        "it really is meant to be open")  # fmt: skip


def test_an_open_or_wildcard_stage_of_any_name_is_refused_for_each_by_name(project):
    # GIVEN a stage that is not called prod, open to anyone and to every origin
    root, write = project
    write("prod-eu", {**OWN_PROD, "AUTH_MODE": "none", "CORS_ALLOW_ORIGIN": "*"}, like="prod")
    # WHEN it is planned
    done = run_deploy(root, "--stage", "prod-eu", "--dry-run")
    # THEN both are refused, one line each, before anything is packaged
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (2, "", [
        "prod-eu cannot be deployed:",
        OPEN.format("prod-eu"),
        "- CORS_ALLOW_ORIGIN='*' on prod-eu lets every site's pages upload with your users' "
        "URLs; set the one origin of your app, like https://app.acme.com, or "
        '"allow_any_origin": true in the stage\'s "deploy" object'])  # fmt: skip
    assert not (root / "build").exists()


def test_an_open_dev_stage_is_refused(project):
    root, write = project
    write("dev", {"UPLOAD_BUCKET": "acme-uploads-dev", "AUTH_MODE": "none"})
    done = run_deploy(root, "--stage", "dev", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        "dev cannot be deployed:", OPEN.format("dev")])  # fmt: skip


def test_a_stage_that_allows_itself_open_by_name_is_planned_with_a_warning(project):
    root, write = project
    write("dev", {"UPLOAD_BUCKET": "acme-uploads-dev", "AUTH_MODE": "none"},
          deploy={"allow_open": True})  # fmt: skip
    done = run_deploy(root, "--stage", "dev", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()) == (0, [
        "warning: AUTH_MODE='none' on dev lets anyone on the internet get upload URLs into "
        "your bucket (allowed by the stage's deploy object)",
        "warning: CORS_ALLOW_ORIGIN='*' on dev lets every site's pages upload with your "
        "users' URLs (allowed by the stage's deploy object)",
        # app.py's own warning, as `chalice package` imports it
        "WARNING: AUTH_MODE=none: anyone who can reach this API can get upload URLs. Use it "
        "only for local development.",
        "Creating deployment package."])  # fmt: skip
    assert done.stdout.startswith("dev: checked and packaged in build/dev; a deploy would:\n")


def test_an_allowance_must_be_a_boolean(project):
    root, write = project
    write("dev", {"UPLOAD_BUCKET": "acme-uploads-dev"}, deploy={"allow_any_origin": "yes"})
    done = run_deploy(root, "--stage", "dev", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        "dev cannot be deployed:",
        "- dev: deploy.allow_any_origin 'yes'; allowed: true, false"])  # fmt: skip


def test_a_functions_own_settings_are_refused_as_unchecked(project, tmp_path):
    # GIVEN prod with the API function opened by a setting of its own
    root, write = project
    write("prod", OWN_PROD)
    config_path = root / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["prod"]["lambda_functions"]["api_handler"] = {
        "environment_variables": {"AUTH_MODE": "none"}}  # fmt: skip
    config_path.write_text(json.dumps(config))
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        "prod cannot be deployed:",
        "- lambda_functions.api_handler.environment_variables: a function's own settings are "
        "not checked; put them in the stage's environment_variables"])  # fmt: skip


def test_policy_files_that_no_longer_match_config_are_refused_with_the_fix(project):
    # GIVEN the user's own bucket in config.json, and `make policies` not run
    root, write = project
    write("prod", OWN_PROD, policies=False)
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        "prod cannot be deployed:",
        "- policy-prod.json, policy-prod-verifier.json does not match .chalice/config.json "
        "(another bucket, prefix or setting): run `make policies` and commit the result",
    ])  # fmt: skip


def test_an_invalid_setting_is_refused_by_name(project):
    root, write = project
    write("prod", {**OWN_PROD, "UPLOAD_MAX_BYTES": "ten"}, policies=False)
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.splitlines()[1].startswith("- UPLOAD_MAX_BYTES='ten'")


def test_a_malware_scan_without_no_overwrite_is_refused(project):
    root, write = project
    write("prod", {**OWN_PROD, "UPLOAD_NO_OVERWRITE": "false"})
    done = run_deploy(root, "--stage", "prod", "--dry-run")
    assert (done.returncode, done.stderr.splitlines()[1:]) == (2, [
        "- UPLOAD_MALWARE_SCAN needs UPLOAD_NO_OVERWRITE=true on a deployed stage: a scan "
        "result names the bytes by their MD5 ETag, and colliding bytes PUT again to the "
        "same URL would take the first one's verdict"])  # fmt: skip


def test_local_stages_are_not_deployed(project):
    root, _ = project
    done = run_deploy(root, "--stage", "local", "--dry-run")
    assert (done.returncode, done.stderr) == (
        2, "local is a stage for `make run` only; deploy dev or prod\n")  # fmt: skip


def test_a_dry_run_checks_and_packages_offline_and_prints_the_plan(project):
    root, write = project
    write("prod", OWN_PROD)
    done = run_deploy(root, "--stage", "prod", "--dry-run", "--waf")
    assert (done.returncode, done.stderr.splitlines()) == (
        0, ["Creating deployment package.", *NO_BYTECODE])  # fmt: skip
    assert done.stdout.splitlines() == [
        "prod: checked and packaged in build/prod; a deploy would:",
        "1. deploy stack presigned-upload-prod-bucket from infra/bucket.yaml: "
        "BucketName=acme-uploads-prod AllowedOrigin=https://app.acme.com "
        "QuarantinePrefix=quarantine/ AbortIncompleteMultipartAfterDays=1 "
        "MalwareScan=true UploadPrefix=put_folder/ UnclaimedUploadDays=7",
        "2. read presigned-upload-prod-bucket's outputs BucketName and BucketArn",
        "3. create or reuse the artifacts bucket presigned-upload-artifacts-<account>-<region>;"
        " upload build/prod/deployment.zip and build/prod/sam.json",
        "4. deploy stack presigned-upload-prod from build/prod/sam.json: UploadBucket and "
        "UploadBucketArn from presigned-upload-prod-bucket's outputs, AlarmTopicArn=''",
        "5. deploy stack presigned-upload-prod-waf from infra/waf.yaml: RestApiId from "
        "presigned-upload-prod's output RestAPIId",
        "6. print presigned-upload-prod's output EndpointURL",
    ]
    template = json.loads((root / "build" / "prod" / "sam.json").read_text())
    assert template["Parameters"]["UploadBucket"]["Default"] == "acme-uploads-prod"


@pytest.mark.parametrize(
    ("target", "command"),
    [(["plan"], "--stage prod --dry-run"),
     (["deploy", "STAGE=dev", "DRY_RUN=1", "WAF=1", "ALARM_TOPIC=arn:t"],
      "--stage dev --dry-run --waf --alarm-topic arn:t")],
)  # fmt: skip
def test_make_plan_and_deploy_run_the_deploy_with_the_options_given(target, command):
    shown = subprocess.run(["make", "-s", "-n", "-o", "install", *target], cwd=PROJECT,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert " ".join(shown.replace("\\\n", " ").split()).endswith(
        f".venv/bin/python -m infra.deploy {command}"
    )


# --- the AWS calls ---------------------------------------------------------------------

NOW = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
MISSING = "Stack with id {} does not exist"


def stack(name, status, outputs=None):
    described = {"StackName": name, "CreationTime": NOW, "StackStatus": status}
    if outputs:
        described["Outputs"] = [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]
    return {"Stacks": [described]}


def expect_create(stub, name, template, parameters, outputs):
    stub.add_client_error("describe_stacks", "ValidationError", MISSING.format(name),
                          expected_params={"StackName": name})  # fmt: skip
    stub.add_response("create_change_set", {"Id": "cs"}, {
        "StackName": name, "ChangeSetName": ANY, "ChangeSetType": "CREATE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], **template,
    })  # fmt: skip
    stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE"},
                      {"StackName": name, "ChangeSetName": ANY})  # fmt: skip
    stub.add_response("execute_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    stub.add_response("describe_stacks", stack(name, "CREATE_COMPLETE"), {"StackName": name})
    stub.add_response("describe_stacks", stack(name, "CREATE_COMPLETE", outputs),
                      {"StackName": name})  # fmt: skip


def expect_unchanged(stub, name, template, parameters, outputs):
    stub.add_response("describe_stacks", stack(name, "UPDATE_COMPLETE"), {"StackName": name})
    stub.add_response("create_change_set", {"Id": "cs"}, {
        "StackName": name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], **template,
    })  # fmt: skip
    reason = "The submitted information didn't contain changes. Submit different information."
    stub.add_response("describe_change_set", {"Status": "FAILED", "StatusReason": reason},
                      {"StackName": name, "ChangeSetName": ANY})  # fmt: skip
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    stub.add_response("describe_stacks", stack(name, "UPDATE_COMPLETE", outputs),
                      {"StackName": name})  # fmt: skip


@pytest.fixture
def moto_endpoint():
    with Server() as url:
        yield url


def test_the_api_stack_is_wired_from_the_bucket_stacks_outputs(moto_endpoint, tmp_path):
    # GIVEN a packaged stage, S3 and STS on moto, CloudFormation stubbed
    out = tmp_path / "build"
    out.mkdir()
    (out / "deployment.zip").write_bytes(b"zip bytes")
    (out / "sam.json").write_text(json.dumps({"Resources": {"APIHandler": {"Properties": {
        "CodeUri": "./deployment.zip"}}}}))  # fmt: skip
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name="eu-west-1")  # fmt: skip
    cfn = session.client("cloudformation")
    clients = {"cloudformation": cfn,
               "s3": session.client("s3", endpoint_url=moto_endpoint),
               "sts": session.client("sts", endpoint_url=moto_endpoint)}  # fmt: skip
    artifacts = "presigned-upload-artifacts-123456789012-eu-west-1"
    code_key = "prod/" + hashlib.sha256(b"zip bytes").hexdigest() + ".zip"
    bucket_outputs = {"BucketName": "acme-uploads-prod-x1", "BucketArn": "arn:aws:s3:::acme-x1"}
    env = {"UPLOAD_BUCKET": "acme-uploads-prod", "CORS_ALLOW_ORIGIN": "https://app.acme.com",
           "UPLOAD_UNCLAIMED_DAYS": "3"}  # fmt: skip
    with Stubber(cfn) as stub:
        expect_create(stub, "presigned-upload-prod-bucket",
                      {"TemplateBody": (PROJECT / "infra" / "bucket.yaml").read_text()},
                      {"BucketName": "acme-uploads-prod",
                       "AllowedOrigin": "https://app.acme.com",
                       "QuarantinePrefix": "quarantine/",
                       "AbortIncompleteMultipartAfterDays": "1", "MalwareScan": "true",
                       "UploadPrefix": "put_folder/", "UnclaimedUploadDays": "3"},
                      bucket_outputs)  # fmt: skip
        expect_unchanged(stub, "presigned-upload-prod", {"TemplateURL": ANY},
                         {"UploadBucket": "acme-uploads-prod-x1",
                          "UploadBucketArn": "arn:aws:s3:::acme-x1",
                          "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"},
                         {"RestAPIId": "abc123defg",
                          "EndpointURL": "https://abc123defg.execute-api/api/"})  # fmt: skip
        expect_create(stub, "presigned-upload-prod-waf",
                      {"TemplateBody": (PROJECT / "infra" / "waf.yaml").read_text()},
                      {"RestApiId": "abc123defg"}, {"WebAclArn": "arn:waf"})  # fmt: skip
        # WHEN the stage is deployed, with the WAF
        url = Deployer(clients.__getitem__, wait_delay=0).deploy(
            "prod", env, out, waf=True, alarm_topic="arn:aws:sns:eu-west-1:123456789012:ops"
        )
        stub.assert_no_pending_responses()
    # THEN the API's URL is the API stack's, and its code is in the artifacts bucket
    assert url == "https://abc123defg.execute-api/api/"
    s3 = clients["s3"]
    assert s3.get_object(Bucket=artifacts, Key=code_key)["Body"].read() == b"zip bytes"
    packaged = json.loads((out / "packaged.json").read_text())
    assert packaged["Resources"]["APIHandler"]["Properties"]["CodeUri"] == {
        "Bucket": artifacts, "Key": code_key}  # fmt: skip
    block = s3.get_public_access_block(Bucket=artifacts)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # AND a second deploy reuses the artifacts bucket
    assert Deployer(clients.__getitem__).artifacts_bucket() == artifacts
