"""What `chalice package` would deploy, for every stage, checked offline.

Chalice's policy autogeneration reads only app.py and maps `generate_presigned_url` to no
IAM action, so it would deploy a role that cannot write to S3 (every upload: 403). The
config turns it off; these tests pin the hand-written policy to what the code needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from chalicelib.core.auth import AuthConfig
from chalicelib.core.logs import log_format, log_level
from chalicelib.core.settings import Settings, cors_allow_origin, quotas_on, verification_on
from chalicelib.multipart.service import max_part_count
from devstack.cors import load_template
from infra.bytecode import runtime_version
from infra.deploy import openings
from infra.package import CHECKOV_SKIPS, add_snapstart, checkov_metadata, parameterized
from infra.policies import out_of_date
from infra.pythons import find_python
from infra.stages import DeploySettings, stage_environment, stage_names

PROJECT = Path(__file__).resolve().parents[2]
CHALICE_DIR = PROJECT / ".chalice"
BIN = Path(sys.executable).parent
STAGES = stage_names()
DEPLOYED_STAGES = [s for s in STAGES if not s.startswith("local")]
pytestmark = pytest.mark.packaging


@pytest.fixture(scope="session", params=STAGES)
def package(request, tmp_path_factory):
    """(stage, sam template, deployment zip) from a real `make package` run, offline: no
    AWS profile, no region, no network."""
    stage = request.param
    out = tmp_path_factory.mktemp(f"package-{stage}")
    # The Lambda runtime's Python, which compiles the zip's bytecode, where there is one.
    runtime = find_python(runtime_version(DeploySettings.for_stage(stage).python))
    path = [str(BIN)] + ([str(Path(runtime).parent)] if runtime else [])
    done = subprocess.run(
        [str(BIN / "python"), "-m", "infra.package", "--stage", stage, str(out)],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": os.pathsep.join(path), "HOME": str(out)},
    )
    PACKAGE_WARNINGS[stage] = [line for line in done.stderr.splitlines() if "warning" in line]
    return stage, json.loads((out / "sam.json").read_text()), out / "deployment.zip"


PACKAGE_WARNINGS: dict[str, list[str]] = {}


def auth_of(stage):
    return AuthConfig.from_env(stage_environment(stage))


def role_policy(template):
    (policy,) = template["Resources"]["ApiHandlerRole"]["Properties"]["Policies"]
    return policy["PolicyDocument"]


def test_policy_autogeneration_is_off():
    assert json.loads((CHALICE_DIR / "config.json").read_text())["autogen_policy"] is False


def test_role_policy_is_the_stages_policy_file_with_the_bucket_as_a_parameter(package):
    stage, template, _ = package
    policy = json.loads((CHALICE_DIR / f"policy-{stage}.json").read_text())
    bucket = stage_environment(stage)["UPLOAD_BUCKET"]
    assert role_policy(template) == parameterized(policy, bucket)
    # The file names the stage's bucket (for `chalice deploy`); the template never does:
    # `make deploy` wires the bucket stack's.
    assert f"arn:aws:s3:::{bucket}" in json.dumps(policy)
    assert "arn:aws:s3" not in json.dumps(role_policy(template))


def test_every_policy_file_is_what_config_json_makes_of_it():
    # `make policies` writes them; a changed bucket or prefix without it fails here.
    assert out_of_date() == []


def test_the_bucket_arn_becomes_the_parameter_and_the_bus_the_stacks_own():
    policy = {"A": ["arn:aws:s3:::b", "arn:aws:s3:::b/k/*", "arn:aws:s3:::b-other/k",
                    "arn:aws:events:*:*:event-bus/default", "plain", 3]}  # fmt: skip
    assert parameterized(policy, "b") == {"A": [
        {"Ref": "UploadBucketArn"}, {"Fn::Sub": "${UploadBucketArn}/k/*"},
        "arn:aws:s3:::b-other/k",
        {"Fn::Sub": "arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"},
        "plain", 3]}  # fmt: skip


def test_role_may_touch_only_the_stages_prefix(package):
    stage, template, _ = package
    env = stage_environment(stage)
    verifying = verification_on(env)
    quarantine = Settings.from_env({**env, "AWS_REGION": "us-east-1"}).quarantine_prefix
    # With auth on, every key is <prefix><principal>/<uuid>: nothing directly in the prefix.
    keys = f"{env['UPLOAD_PREFIX']}*/*" if auth_of(stage).required else f"{env['UPLOAD_PREFIX']}*"
    by_sid = {s["Sid"]: s for s in role_policy(template)["Statement"]}
    # Tagging: the verdict read by status, a claim, and a PUT that carries x-amz-tagging.
    unclaimed = "UPLOAD_UNCLAIMED_DAYS" in env
    tagging = ["s3:GetObjectTagging", "s3:PutObjectTagging"] if verifying or unclaimed else []
    expected = {
        "WriteOwnLogs": {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/presigned-upload-{stage}:*",
            "Sid": "WriteOwnLogs",
        },
        # PutObject: the presigned PUT, POST and part URLs, and CreateMultipartUpload and
        # CompleteMultipartUpload. GetObject: the HEAD of status, the download URL.
        # ListMultipartUploadParts: resuming, and the size check on completion.
        # AbortMultipartUpload: DELETE /s3/multipart/{id}, and refusing an oversize upload.
        "UploadsUnderPrefix": {
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
                *tagging,
            ],
            "Resource": {"Fn::Sub": f"${{UploadBucketArn}}/{keys}"},
            "Sid": "UploadsUnderPrefix",
        },
        # ListBucket, only for keys under the prefix: status finds <uuid>.<ext> by prefix,
        # and without it S3 answers a HEAD of a missing key 403 instead of 404; and, with
        # verification, the same in quarantine (a rejected upload's reason).
        "FindUploadsUnderPrefix": {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": {"Ref": "UploadBucketArn"},
            "Condition": {"StringLike": {"s3:prefix": [
                keys, *([f"{quarantine}{keys}"] if verifying else [])]}},
            "Sid": "FindUploadsUnderPrefix",
        },
    }  # fmt: skip
    if verifying:
        expected["ReadRejectedUploads"] = {
            "Sid": "ReadRejectedUploads",
            "Effect": "Allow",
            "Action": ["s3:GetObjectTagging"],
            "Resource": {"Fn::Sub": f"${{UploadBucketArn}}/{quarantine}{keys}"},
        }
    if quotas_on(env):
        # Its own table's counters and reservations only; no Scan, no Query.
        expected["CountQuotas"] = {
            "Sid": "CountQuotas", "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                       "dynamodb:UpdateItem"],
            "Resource": {"Fn::GetAtt": ["QuotaTable", "Arn"]},
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["q#*", "u#*"]}},
        }  # fmt: skip
    assert by_sid == expected


def test_the_verifier_is_deployed_exactly_where_verification_is_on(package):
    stage, template, _ = package
    env = stage_environment(stage)
    resources = template["Resources"]
    if not (verification_on(env) or quotas_on(env)):
        assert not {"VerifyUpload", "VerifyUploadRole", "VerifyUploadLogGroup"} & set(resources)
        return
    function = resources["VerifyUpload"]
    properties = function["Properties"]
    name = f"presigned-upload-{stage}-verify_upload"
    deploy = DeploySettings.for_stage(stage)
    assert (properties["Handler"], properties["FunctionName"], properties["Runtime"],
            properties["Architectures"], properties["Timeout"]) == (
        "app.verify_upload", name, deploy.python, ["arm64"], 120)  # fmt: skip
    bucket, prefix = {"Ref": "UploadBucket"}, env["UPLOAD_PREFIX"]
    s3 = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", *(["Object Deleted"] if quotas_on(env) else [])],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}},
    }
    # With the malware scan, GuardDuty's results for the bucket parameter's prefix too.
    scans = {
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Malware Protection Object Scan Result"],
        "detail": {"s3ObjectDetails": {"bucketName": [bucket], "objectKey": [{"prefix": prefix}]}},
    }
    pattern = {"$or": [s3, scans]} if deploy.malware_scan else s3
    event = {"Type": "CloudWatchEvent", "Properties": {"Pattern": pattern}}
    assert properties["Events"] == {"VerifyUploadEvent": event}
    assert properties["Environment"]["Variables"]["UPLOAD_BUCKET"] == {"Ref": "UploadBucket"}
    assert function["DependsOn"][0] == "VerifyUploadLogGroup"
    retention = deploy.log_retention_days
    assert resources["VerifyUploadLogGroup"]["Properties"] == {
        "LogGroupName": f"/aws/lambda/{name}", "RetentionInDays": retention}  # fmt: skip
    assert properties["Role"] == {"Fn::GetAtt": ["VerifyUploadRole", "Arn"]}
    alarm = resources["VerifierErrorsAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Dimensions"]) == (
        "Errors", [{"Name": "FunctionName", "Value": name}])  # fmt: skip
    # An event failed three times waits on a queue of its own, alarmed, for an operator.
    failures = {"Fn::GetAtt": ["VerifyFailures", "Arn"]}
    assert properties["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": failures}},
    }
    assert resources["VerifyFailures"]["Properties"] == {
        "QueueName": f"presigned-upload-{stage}-verify-failures",
        "MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}  # fmt: skip
    (policy,) = resources["VerifyUploadRole"]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"][-1] == {
        "Sid": "KeepFailedEvents", "Effect": "Allow", "Action": ["sqs:SendMessage"],
        "Resource": failures}  # fmt: skip
    waiting = resources["VerifyFailuresAlarm"]["Properties"]
    assert (waiting["MetricName"], waiting["Dimensions"], waiting["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["VerifyFailures", "QueueName"]}}],
        0,
    )


def test_the_verifier_may_judge_quarantine_and_publish_and_nothing_else(package):
    stage, template, _ = package
    env = stage_environment(stage)
    if not verification_on(env):
        return
    (policy,) = template["Resources"]["VerifyUploadRole"]["Properties"]["Policies"]
    # Not popping "Sid": the packaged template is shared by the module's tests.
    by_sid = {s["Sid"]: {k: v for k, v in s.items() if k != "Sid"}
              for s in policy["PolicyDocument"]["Statement"]}  # fmt: skip
    prefix = env["UPLOAD_PREFIX"]
    settings = Settings.from_env({**env, "AWS_REGION": "us-east-1"})
    quarantine, bus = settings.quarantine_prefix, settings.event_bus
    settles = {"SettleQuotas": {
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        "Resource": {"Fn::GetAtt": ["QuotaTable", "Arn"]},
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["q#*", "u#*"]}}},
    } if quotas_on(env) else {}  # fmt: skip
    assert by_sid == {
        **settles,
        "KeepFailedEvents": {"Effect": "Allow", "Action": ["sqs:SendMessage"],
                             "Resource": {"Fn::GetAtt": ["VerifyFailures", "Arn"]}},
        "WriteOwnLogs": {"Effect": "Allow",
                         "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                         "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/"
                                     f"presigned-upload-{stage}-verify_upload:*"},
        # HEAD, the ranged GET and the tags; DeleteObject: moving a rejected upload.
        # ListBucket: so that S3 answers a HEAD of a missing object 404, not 403 (a 403 is
        # then a fault, and fails the invocation).
        "FindUploads": {"Effect": "Allow", "Action": ["s3:ListBucket"],
                        "Resource": {"Ref": "UploadBucketArn"},
                        "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
        "JudgeUploads": {"Effect": "Allow",
                         "Action": ["s3:GetObject", "s3:GetObjectTagging",
                                    "s3:PutObjectTagging", "s3:DeleteObject"],
                         "Resource": {"Fn::Sub": f"${{UploadBucketArn}}/{prefix}*"}},
        # The copy into quarantine, with its tags.
        "QuarantineRejected": {"Effect": "Allow",
                               "Action": ["s3:PutObject", "s3:PutObjectTagging"],
                               "Resource": {"Fn::Sub": "${UploadBucketArn}/"
                                                       f"{quarantine}{prefix}*"}},
        "PublishVerdicts": {"Effect": "Allow", "Action": ["events:PutEvents"],
                            "Resource": {"Fn::Sub": "arn:aws:events:${AWS::Region}:"
                                                    f"${{AWS::AccountId}}:event-bus/{bus}"}},
    }  # fmt: skip
    # No webhook on any shipped stage, so no secret to read.
    assert "UPLOAD_WEBHOOK_URL" not in env


def test_the_bucket_sends_events_and_expires_unclaimed_uploads_and_quarantine():
    bucket = load_template()["Resources"]["UploadBucket"]["Properties"]
    assert bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}}  # fmt: skip
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireUnclaimedUploads"] == {
        "Id": "ExpireUnclaimedUploads", "Status": "Enabled",
        "TagFilters": [{"Key": "upload-claimed", "Value": "false"}],
        "ExpirationInDays": {"!Ref": "UnclaimedUploadDays"}}  # fmt: skip
    assert rules["ExpireQuarantine"] == {
        "Id": "ExpireQuarantine", "Status": "Enabled", "Prefix": {"!Ref": "QuarantinePrefix"},
        "ExpirationInDays": {"!Ref": "QuarantineDays"}}  # fmt: skip


def test_function_is_named_as_its_log_permission_expects(package):
    stage, template, _ = package
    (log_group,) = [
        s["Resource"] for s in role_policy(template)["Statement"] if s["Sid"] == "WriteOwnLogs"
    ]
    name = template["Resources"]["APIHandler"]["Properties"]["FunctionName"]
    assert name == f"presigned-upload-{stage}"
    assert log_group == f"arn:aws:logs:*:*:log-group:/aws/lambda/{name}:*"


def test_function_gets_exactly_the_stages_settings_and_they_are_valid(package):
    stage, template, _ = package
    env = stage_environment(stage)
    function = template["Resources"]["APIHandler"]["Properties"]
    table = {"UPLOAD_QUOTA_TABLE": {"Ref": "QuotaTable"}} if quotas_on(env) else {}
    assert function["Environment"]["Variables"] == {
        **env, "UPLOAD_BUCKET": {"Ref": "UploadBucket"}, **table}  # fmt: skip
    # Lambda itself provides AWS_REGION; everything else must validate as deployed.
    Settings.from_env({**env, "AWS_REGION": "eu-west-1"})
    cors_allow_origin(env)
    AuthConfig.from_env(env)
    log_level(env)
    assert log_format(env) == "emf"  # the metrics reach CloudWatch


ROUTES = {
    "/put-url": ["get"],
    "/post-url": ["get"],
    "/quota": ["get"],
    "/uploads/{upload_id}": ["get"],
    "/uploads/{upload_id}/download-url": ["get"],
    "/uploads/{upload_id}/claim": ["post"],
    "/s3/params": ["get"],
    "/s3/multipart": ["post"],
    "/s3/multipart/{upload_id}": ["get", "delete"],
    "/s3/multipart/{upload_id}/batch": ["get"],
    "/s3/multipart/{upload_id}/complete": ["post"],
    "/s3/sign": ["post"],
    "/s3/multipart/{upload_id}/{part_number}": ["get"],
}


def test_exactly_the_api_routes_are_published(package):
    _, template, _ = package
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert sorted(paths) == sorted(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_route_is_wired_to_the_lambda_with_an_open_cors_preflight(package, route):
    stage, template, _ = package
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert set(paths[route]) == {*ROUTES[route], "options"}
    for method in ROUTES[route]:
        assert paths[route][method]["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    options = paths[route]["options"]["x-amazon-apigateway-integration"]
    assert options["type"] == "mock"
    headers = options["responses"]["default"]["responseParameters"]
    origin = cors_allow_origin(stage_environment(stage))
    allowed = headers["method.response.header.Access-Control-Allow-Methods"].strip("'")
    assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{origin}'"
    assert sorted(allowed.split(",")) == sorted(m.upper() for m in [*ROUTES[route], "options"])


def test_every_route_has_the_stages_authorizer_and_no_preflight_has_one(package):
    stage, template, _ = package
    auth = auth_of(stage)
    swagger = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    security = {
        (route, method): spec.get("security")
        for route, methods in swagger["paths"].items()
        for method, spec in methods.items()
    }
    expected: list[dict[str, list[Any]]] | None = {
        "none": None,
        "cognito": [{"UserPool": []}],
        "iam": [{"sigv4": []}],
    }[auth.mode]
    assert security == {
        **{(route, method): expected for route, methods in ROUTES.items() for method in methods},
        **{(route, "options"): None for route in ROUTES},
    }
    if auth.mode == "cognito":
        authorizer = swagger["securityDefinitions"]["UserPool"]["x-amazon-apigateway-authorizer"]
        assert authorizer == {
            "type": "cognito_user_pools",
            "providerARNs": list(auth.user_pool_arns),
        }
    if auth.mode == "iam":
        assert swagger["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_every_deployed_stage_requires_authorization(stage):
    assert auth_of(stage).required


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_no_shipped_stage_is_open_unless_its_deploy_object_says_so_by_name(stage):
    env = stage_environment(stage)
    found = openings(stage, env, DeploySettings.for_stage(stage))
    assert [text for text, allowed in found if not allowed] == []
    # dev's '*' origin is allowed by name (IAM auth: a page cannot sign without credentials)
    assert [allowed for _, allowed in found] == ([True] if stage == "dev" else [])


def test_prod_authorizes_with_cognito():
    assert auth_of("prod").mode == "cognito"


def test_gateway_own_errors_carry_cors_and_the_apps_error_shape(package):
    stage, template, _ = package
    origin = cors_allow_origin(stage_environment(stage))
    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses == {
        name: {
            "ResponseParameters": {"Headers": {"Access-Control-Allow-Origin": f"'{origin}'"}},
            "ResponseTemplates": {
                "application/json": (
                    '{"Code": "$context.error.responseType", '
                    '"Message": $context.error.messageString}'
                )
            },
        }
        for name in ("DEFAULT_4XX", "DEFAULT_5XX")
    }


def test_prod_turns_the_protective_settings_on():
    settings = Settings.from_env({**stage_environment("prod"), "AWS_REGION": "eu-west-1"})
    assert (settings.allowed_types, settings.max_bytes) == (
        ("image/*", "application/pdf"),
        10485760,
    )
    assert (settings.require_checksum, settings.no_overwrite) == (True, True)
    assert settings.url_expires <= 300
    assert cors_allow_origin(stage_environment("prod")) != "*"


def test_deployment_zip_holds_the_app_and_no_dev_code(package):
    _, _, zip_path = package
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"app.py", "chalicelib/core/settings.py", "chalicelib/core/presign.py"} <= names
    assert {"chalicelib/core/auth.py", "chalicelib/uploads/status.py"} <= names
    assert not [n for n in names if n.startswith(("devstack/", "tests/", "infra/"))]
    # The one runtime dependency (requirements.txt): the verifier's type sniffer.
    assert "filetype/__init__.py" in names
    assert not [n for n in names if n.split("/")[0] in ("boto3", "botocore", "moto", "yaml")]


def test_every_module_ships_with_bytecode_for_the_runtimes_python_and_no_other(package):
    stage, _, zip_path = package
    runtime = DeploySettings.for_stage(stage).python
    version = runtime_version(runtime)
    names = zipfile.ZipFile(zip_path).namelist()
    modules = sorted(n for n in names if n.endswith(".py"))
    bytecode = sorted(n for n in names if "__pycache__" in n)
    if find_python(version) is None:  # said, and the working tree's .pyc files left out
        assert PACKAGE_WARNINGS[stage] == [
            f"warning: no {runtime} here to compile the zip's modules with: it ships without "
            "bytecode, so each cold start compiles them (docs/benchmarks.md)"
        ]
        assert bytecode == []
        return
    tag = f"cpython-{version[0]}{version[1]}"
    assert bytecode == sorted(
        str(
            PurePosixPath(m).parent / "__pycache__" / f"{PurePosixPath(m).stem}.{tag}.pyc"
        ).removeprefix("./")
        for m in modules
    )
    assert PACKAGE_WARNINGS[stage] == []


def snapstarted(template):
    template = json.loads(json.dumps(template))
    add_snapstart(template)
    return template


def test_snapstart_publishes_a_version_and_every_route_invokes_its_alias(package):
    _, template, _ = package
    started = snapstarted(template)
    function = started["Resources"]["APIHandler"]["Properties"]
    assert (function["AutoPublishAlias"], function["SnapStart"],
            function["AutoPublishAliasAllProperties"]) == (
        "live", {"ApplyOn": "PublishedVersions"}, True)  # fmt: skip
    paths = started["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    uris = {json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
            for methods in paths.values() for method, operation in methods.items()
            if method != "options"}  # fmt: skip
    uri = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
           "${APIHandlerAliaslive}/invocations")  # fmt: skip
    assert uris == {json.dumps({"Fn::Sub": uri})}
    permission = started["Resources"]["APIHandlerInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "APIHandlerAliaslive"}
    # Only the API function: the verifier is invoked by EventBridge, off the user's path.
    assert "SnapStart" not in started["Resources"].get("VerifyUpload", {}).get("Properties", {})
    # Everything else is as without it.
    del function["AutoPublishAlias"], function["SnapStart"]
    del function["AutoPublishAliasAllProperties"]
    assert json.dumps(started).replace("APIHandlerAliaslive", "APIHandler.Arn").replace(
        '{"Ref": "APIHandler.Arn"}', '{"Ref": "APIHandler"}'
    ) == json.dumps(template)


def test_the_snapstart_template_passes_cfn_lint(package, tmp_path):
    _, template, _ = package
    sam = tmp_path / "sam.json"
    sam.write_text(json.dumps(snapstarted(template)))
    lint = subprocess.run([str(BIN / "cfn-lint"), str(sam)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_api_function_gets_128_mb_only_where_a_completion_lists_one_page_of_parts():
    # make bench: a warm GET /put-url fits Lambda's 1 ms billing unit at 128 MB's share
    # (docs/deployment.md). But a container's first S3 call imports boto3 there, about
    # 5 s, and a completion of 10,000 parts lists 10 pages: at 128 MB that no longer fits
    # the 29 s budget. So 128 MB only where UPLOAD_MAX_BYTES keeps uploads to one page
    # (1,000 parts); the verifier keeps 256 MB (boto3 on every cold start, and bytes).
    config = json.loads((CHALICE_DIR / "config.json").read_text())["stages"]
    memory = {stage: (config[stage]["lambda_memory_size"],
                      config[stage]["lambda_functions"]["verify_upload"]["lambda_memory_size"])
              for stage in DEPLOYED_STAGES}  # fmt: skip
    assert memory == {"dev": (256, 256), "prod": (128, 256)}
    small = [stage for stage in DEPLOYED_STAGES if memory[stage][0] < 256]
    limits = [Settings.from_env({**stage_environment(s), "AWS_REGION": "eu-west-1"}).max_bytes
              for s in small]  # fmt: skip
    assert [max_part_count(limit or 5 * 1024**4) for limit in limits] == [2]  # prod: 10 MiB


def test_snapstart_is_off_unless_the_stage_turns_it_on():
    assert DeploySettings().snapstart is False
    assert [s for s in STAGES if DeploySettings.for_stage(s).snapstart] == []


def test_packaged_template_passes_cfn_lint(package, tmp_path):
    _, template, _ = package
    sam = tmp_path / "sam.json"
    sam.write_text(json.dumps(template))
    lint = subprocess.run([str(BIN / "cfn-lint"), str(sam)], capture_output=True, text=True)
    assert (lint.returncode, lint.stdout) == (0, "")


@pytest.mark.parametrize("template", ["bucket.yaml", "waf.yaml"])
def test_bucket_and_waf_templates_pass_cfn_lint(template):
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(PROJECT / "infra" / template)],
        capture_output=True,
        text=True,
    )
    assert (lint.returncode, lint.stdout) == (0, "")


def test_the_bucket_origin_must_be_given_it_has_no_wildcard_default():
    origin = load_template()["Parameters"]["AllowedOrigin"]
    assert (origin.get("Default"), origin["MinLength"]) == (None, 1)


def test_the_waf_limits_each_token_and_each_ip_on_the_apis_stage():
    doc = load_template(PROJECT / "infra" / "waf.yaml")
    acl = doc["Resources"]["WebAcl"]["Properties"]
    rules = {r["Name"]: (r["Action"], r["Statement"]["RateBasedStatement"])
             for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]}  # fmt: skip
    assert rules == {
        "PerUser": ({"Block": {}}, {
            "Limit": {"!Ref": "PerUserLimit"}, "EvaluationWindowSec": 300,
            "AggregateKeyType": "CUSTOM_KEYS",
            "CustomKeys": [{"Header": {"Name": "authorization", "TextTransformations": [
                {"Priority": 0, "Type": "NONE"}]}}],
        }),
        "PerIp": ({"Block": {}}, {"Limit": {"!Ref": "PerIpLimit"}, "EvaluationWindowSec": 300,
                                  "AggregateKeyType": "IP"}),
    }  # fmt: skip
    assert (acl["Scope"], acl["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    assert acl["Rules"][2]["Statement"] == {"ManagedRuleGroupStatement": {
        "VendorName": "AWS", "Name": "AWSManagedRulesKnownBadInputsRuleSet"}}  # fmt: skip
    association = doc["Resources"]["StageAssociation"]["Properties"]
    assert association["ResourceArn"] == {"!Sub": "arn:${AWS::Partition}:apigateway:"
        "${AWS::Region}::/restapis/${RestApiId}/stages/${StageName}"}  # fmt: skip


def test_bucket_is_private_encrypted_and_cleans_up_abandoned_multipart_uploads():
    doc = load_template()
    bucket = doc["Resources"]["UploadBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    (lifecycle,) = [r for r in bucket["LifecycleConfiguration"]["Rules"]
                    if r["Id"] == "AbortIncompleteMultipartUploads"]  # fmt: skip
    assert lifecycle["Status"] == "Enabled"
    assert doc["Parameters"]["AbortIncompleteMultipartAfterDays"]["Default"] == 1
    assert lifecycle["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": {"!Ref": "AbortIncompleteMultipartAfterDays"}
    }
    (deny,) = doc["Resources"]["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_function_runs_the_stages_supported_python_on_arm64(package):
    stage, template, _ = package
    properties = template["Resources"]["APIHandler"]["Properties"]
    expected = DeploySettings.for_stage(stage).python
    assert (properties["Runtime"], properties["Architectures"]) == (expected, ["arm64"])
    assert expected in ("python3.12", "python3.13")


def test_the_log_group_exists_first_with_the_stages_retention(package):
    stage, template, _ = package
    resources = template["Resources"]
    assert resources["APIHandlerLogGroup"] == {
        "Type": "AWS::Logs::LogGroup",
        "Metadata": checkov_metadata("APIHandlerLogGroup"),
        "Properties": {
            "LogGroupName": f"/aws/lambda/presigned-upload-{stage}",
            "RetentionInDays": DeploySettings.for_stage(stage).log_retention_days,
        },
    }
    assert resources["APIHandler"]["DependsOn"][0] == "APIHandlerLogGroup"


def test_tracing_and_its_permissions_are_there_only_on_the_stages_that_turn_it_on(package):
    stage, template, _ = package
    resources = template["Resources"]
    function, api = resources["APIHandler"], resources["RestAPI"]["Properties"]
    if not DeploySettings.for_stage(stage).xray:
        assert (function["Properties"]["Tracing"], api.get("TracingEnabled")) == (
            "PassThrough", None)  # fmt: skip
        assert function["DependsOn"] == ["APIHandlerLogGroup"]
        assert "TracingPolicy" not in resources
        assert "xray:" not in json.dumps(template)
        return
    assert (function["Properties"]["Tracing"], api["TracingEnabled"]) == ("Active", True)
    assert function["DependsOn"] == ["APIHandlerLogGroup", "TracingPolicy"]
    assert resources["TracingPolicy"]["Properties"] == {
        "PolicyName": "WriteTraces",
        "Roles": [{"Ref": "ApiHandlerRole"}],
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Resource": "*",
                           "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]}],
        },
    }  # fmt: skip


def test_each_checkov_finding_kept_is_skipped_with_its_reason(package):
    _, template, _ = package
    resources = template["Resources"]
    skipped = {
        logical: {s["id"]: s["comment"] for s in resources[logical]["Metadata"]["checkov"]["skip"]}
        for logical in ("RestAPI", "APIHandler", "APIHandlerLogGroup", "VerifyUpload", "QuotaTable")
        if logical in resources
    }
    assert skipped == {logical: CHECKOV_SKIPS[logical] for logical in skipped}
    assert sorted(skipped["RestAPI"]) == ["CKV_AWS_120", "CKV_AWS_73", "CKV_AWS_76"]
    assert sorted(skipped["APIHandler"]) == ["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117",
                                             "CKV_AWS_173"]  # fmt: skip
    assert all(len(reason) > 40 for reasons in skipped.values() for reason in reasons.values())


def test_the_dashboard_shows_the_logs_metrics_the_services_and_the_alarms(package):
    stage, template, _ = package
    name = f"presigned-upload-{stage}"
    dashboard = template["Resources"]["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == name

    # Resolve the body as CloudFormation would: Fn::Sub (the region), GetAtt (an ARN).
    def resolve(part):
        if isinstance(part, str):
            return part
        if "Fn::Sub" in part:
            return part["Fn::Sub"].replace("${AWS::Region}", "eu-west-1")
        return f"arn:aws:cloudwatch:eu-west-1:1:alarm:{part['Fn::GetAtt'][0]}"

    separator, parts = dashboard["DashboardBody"]["Fn::Join"]
    body = json.loads(separator.join(map(resolve, parts)))
    *graphs, alarms = body["widgets"]
    quotas = quotas_on(stage_environment(stage))
    scans = DeploySettings.for_stage(stage).malware_scan
    assert alarms["properties"]["alarms"] == [
        f"arn:aws:cloudwatch:eu-west-1:1:alarm:{a}" for a in (
            "ApiServerErrorRateAlarm", "ApiLatencyP99Alarm", "LambdaThrottlesAlarm",
            "LambdaErrorsAlarm", *(["QuotaReadThrottlesAlarm", "QuotaWriteThrottlesAlarm",
                                    "QuotaFailOpenAlarm"] if quotas else []),
            *(["MalwareFoundAlarm", "UnscannedUploadsAlarm"] if scans else []))]  # fmt: skip
    assert {g["properties"]["region"] for g in graphs} == {"eu-west-1"}
    shown = [[m[0]["expression"] if isinstance(m[0], dict) else tuple(m[:2])
              for m in g["properties"]["metrics"]] for g in graphs]  # fmt: skip
    search = "SEARCH('{{presigned-upload,{}}} service=\"{}\" MetricName=\"{}\"', '{}', 300)"
    assert shown == [
        [search.format("service,route,status_class", name, "requests", "Sum")],
        [search.format("service,route,status_class", name, "latency_ms", "p99")],
        [search.format("service,error", name, "errors", "Sum")],
        [("presigned-upload", "urls_issued"), ("presigned-upload", "multipart_completions"),
         ("presigned-upload", "cold_starts")],
        [("AWS/ApiGateway", "Count"), ("AWS/ApiGateway", "4XXError"),
         ("AWS/ApiGateway", "5XXError")],
        [("AWS/Lambda", "ConcurrentExecutions"), ("AWS/Lambda", "Throttles"),
         ("AWS/Lambda", "Errors")],
        *([[("presigned-upload", "errors"), ("presigned-upload", "quota_fail_open"),
            ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents")]]
          if quotas else []),
        *([[("presigned-upload", "malware_found"), ("presigned-upload", "unscanned")]]
          if scans else []),
    ]  # fmt: skip


def test_dev_traces_and_prod_does_not():
    assert (DeploySettings.for_stage("dev").xray, DeploySettings.for_stage("prod").xray) == (
        True, False)  # fmt: skip


def test_every_method_of_the_stage_is_throttled(package):
    stage, template, _ = package
    deploy = DeploySettings.for_stage(stage)
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["Name"] == f"presigned-upload-{stage}"
    assert api["MethodSettings"] == [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": deploy.throttle_rate_limit,
        "ThrottlingBurstLimit": deploy.throttle_burst_limit,
    }]  # fmt: skip


def test_alarms_watch_errors_latency_and_throttles_and_notify_the_topic(package):
    stage, template, _ = package
    name = f"presigned-upload-{stage}"
    alarms = {logical: r["Properties"] for logical, r in template["Resources"].items()
              if r["Type"] == "AWS::CloudWatch::Alarm"
              and logical not in ("VerifierErrorsAlarm", "VerifyFailuresAlarm")}  # fmt: skip
    watched = {
        logical: (p["Namespace"], p["MetricName"], p.get("Statistic", p.get("ExtendedStatistic")),
                  p["Threshold"], {d["Name"]: d["Value"] for d in p["Dimensions"]})
        for logical, p in alarms.items()
    }  # fmt: skip
    api = {"ApiName": name, "Stage": "api"}
    assert watched == {
        "ApiServerErrorRateAlarm": ("AWS/ApiGateway", "5XXError", "Average", 0.01, api),
        "ApiLatencyP99Alarm": ("AWS/ApiGateway", "Latency", "p99", 5000, api),
        "LambdaThrottlesAlarm": ("AWS/Lambda", "Throttles", "Sum", 0, {"FunctionName": name}),
        "LambdaErrorsAlarm": ("AWS/Lambda", "Errors", "Sum", 0, {"FunctionName": name}),
        **({
            "QuotaReadThrottlesAlarm": ("AWS/DynamoDB", "ReadThrottleEvents", "Sum", 0,
                                        {"TableName": {"Ref": "QuotaTable"}}),
            "QuotaWriteThrottlesAlarm": ("AWS/DynamoDB", "WriteThrottleEvents", "Sum", 0,
                                         {"TableName": {"Ref": "QuotaTable"}}),
            # A URL issued uncounted (UPLOAD_QUOTA_FAIL_OPEN): from the request log's EMF.
            "QuotaFailOpenAlarm": ("presigned-upload", "quota_fail_open", "Sum", 0,
                                   {"service": name}),
        } if quotas_on(stage_environment(stage)) else {}),
        **({
            # From the verifier's verdict lines (EMF): a threat found, a scan without a
            # result (UNSUPPORTED, ACCESS_DENIED, FAILED).
            "MalwareFoundAlarm": ("presigned-upload", "malware_found", "Sum", 0,
                                  {"service": f"{name}-verify_upload"}),
            "UnscannedUploadsAlarm": ("presigned-upload", "unscanned", "Sum", 0,
                                      {"service": f"{name}-verify_upload"}),
        } if DeploySettings.for_stage(stage).malware_scan else {}),
    }  # fmt: skip
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert all(p["AlarmActions"] == notify for p in alarms.values())
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_a_stage_with_quotas_gets_its_table_on_demand_with_ttl_recovery_and_encryption(package):
    stage, template, _ = package
    table = template["Resources"].get("QuotaTable")
    if not quotas_on(stage_environment(stage)):
        assert table is None
        return
    assert table == {
        "Type": "AWS::DynamoDB::Table",
        # The counts survive a stack's deletion or replacement: they are what users used.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": checkov_metadata("QuotaTable"),
        "Properties": {
            "TableName": f"presigned-upload-{stage}-quotas",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    }
    variables = template["Resources"]["VerifyUpload"]["Properties"]["Environment"]["Variables"]
    assert variables["UPLOAD_QUOTA_TABLE"] == {"Ref": "QuotaTable"}


def test_prod_counts_quotas():
    settings = Settings.from_env({**stage_environment("prod"), "AWS_REGION": "eu-west-1"})
    assert (settings.quota_files_per_day, settings.quota_bytes_per_day,
            settings.quota_stored_bytes, settings.quota_fail_open) == (
        500, 1024**3, 10 * 1024**3, False)  # fmt: skip


def test_the_bucket_stack_scans_the_upload_prefix_with_guardduty_when_asked():
    doc = load_template()
    assert doc["Conditions"] == {"ScanUploads": {"!Equals": [{"!Ref": "MalwareScan"}, "true"]}}
    assert doc["Parameters"]["MalwareScan"]["Default"] == "false"
    plan = doc["Resources"]["MalwareProtectionPlan"]
    assert (plan["Type"], plan["Condition"]) == ("AWS::GuardDuty::MalwareProtectionPlan",
                                                 "ScanUploads")  # fmt: skip
    assert plan["Properties"] == {
        "Role": {"!GetAtt": "MalwareProtectionRole.Arn"},
        "ProtectedResource": {"S3Bucket": {"BucketName": {"!Ref": "UploadBucket"},
                                           "ObjectPrefixes": [{"!Ref": "UploadPrefix"}]}},
        "Actions": {"Tagging": {"Status": "ENABLED"}},
    }  # fmt: skip
    role = doc["Resources"]["MalwareProtectionRole"]
    assert role["Condition"] == "ScanUploads"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": "malware-protection-plan.guardduty.amazonaws.com"}}  # fmt: skip
    (policy,) = role["Properties"]["Policies"]
    granted = {
        s["Sid"]: (s["Action"], s["Resource"]) for s in policy["PolicyDocument"]["Statement"]
    }
    rule = {"!Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
                    "DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*"}  # fmt: skip
    objects, bucket = {"!Sub": "${UploadBucket.Arn}/*"}, {"!GetAtt": "UploadBucket.Arn"}
    # AWS's documented role for a plan, without KMS (the bucket is SSE-S3).
    assert granted == {
        "AllowManagedRuleToSendS3EventsToGuardDuty": (
            ["events:PutRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets"],
            rule),
        "AllowGuardDutyToMonitorEventBridgeManagedRule": (
            ["events:DescribeRule", "events:ListTargetsByRule"], rule),
        "AllowPostScanTag": (["s3:PutObjectTagging", "s3:GetObjectTagging",
                              "s3:PutObjectVersionTagging", "s3:GetObjectVersionTagging"], objects),
        "AllowEnableS3EventBridgeEvents": (
            ["s3:PutBucketNotification", "s3:GetBucketNotification"], bucket),
        "AllowPutValidationObject": (
            "s3:PutObject",
            {"!Sub": "${UploadBucket.Arn}/malware-protection-resource-validation-object"}),
        "AllowCheckBucketOwnership": ("s3:ListBucket", bucket),
        "AllowMalwareScan": (["s3:GetObject", "s3:GetObjectVersion"], objects),
    }  # fmt: skip


def test_make_deploy_gives_prod_its_malware_scan_and_the_stages_prefix():
    from infra.deploy import bucket_parameters

    for stage in ("prod", "dev"):
        parameters = bucket_parameters(stage, stage_environment(stage))
        expected = "true" if stage == "prod" else "false"
        assert (parameters["MalwareScan"], parameters["UploadPrefix"]) == (expected, "put_folder/")
