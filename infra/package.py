"""`make package`: `chalice package`, plus what its template lacks for a real deployment.

    python -m infra.package --stage prod build/prod

API Gateway, not the Lambda, answers a request its authorizer refuses (401, 403), an
unknown route (403 "Missing Authentication Token") and throttling (429). By default those
answers carry no CORS headers, so a browser hides them from the page, which sees only a
network error. This writes a template that gives them the stage's CORS origin and the
shape of the Lambda's own errors ({"Code": ..., "Message": ...}), and merges it into
what `chalice package` produces (its API resource is ``RestAPI``).

It also names the function ``presigned-upload-<stage>``, as `chalice deploy` does:
otherwise CloudFormation invents a name, and the role's log permission, scoped to
``/aws/lambda/presigned-upload-<stage>``, would not cover the function's own logs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.core.settings import cors_allow_origin, quotas_on, verification_on
from chalicelib.verifier import event_pattern
from infra import policies
from infra.bytecode import add_bytecode
from infra.policies import ANY_REGION_BUS, ANY_REGION_TABLE, BUCKET_ARN
from infra.stages import (
    APP_NAME,
    CONFIG,
    PROJECT,
    DeploySettings,
    stage_config,
    stage_environment,
    stage_names,
)

SNAPSTART_ALIAS = "live"  # the alias API Gateway invokes on a SnapStart stage

# Every 4xx and 5xx type without a response of its own inherits these two, which covers
# UNAUTHORIZED, ACCESS_DENIED, MISSING_AUTHENTICATION_TOKEN, THROTTLED and the rest.
RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")
BODY = '{"Code": "$context.error.responseType", "Message": $context.error.messageString}'


def merge_template(
    stage: str,
    origin: str,
    deploy: DeploySettings,
    bucket: str,
    policy: dict[str, Any],
    verifier_policy: dict[str, Any] | None = None,
    prefix: str = "put_folder/",
    quotas: bool = False,
) -> dict[str, Any]:
    """The template to merge into Chalice's SAM output for a stage with this CORS origin
    and these deployment settings, its role's ``policy`` (from its policy file), and the
    name of its bucket in config.json, which becomes the default of the ``UploadBucket``
    parameter: `make deploy` gives the bucket stack's outputs instead. The policies name
    that bucket; here they name the parameter."""
    response = {
        # SAM wants header values as API Gateway mapping expressions: a quoted literal.
        "ResponseParameters": {"Headers": {"Access-Control-Allow-Origin": f"'{origin}'"}},
        "ResponseTemplates": {"application/json": BODY},
    }
    name = f"{APP_NAME}-{stage}"
    template: dict[str, Any] = {
        "Parameters": {
            "UploadBucket": {
                "Type": "String",
                "Default": bucket,
                "Description": "The upload bucket's name (the bucket stack's BucketName).",
            },
            "UploadBucketArn": {
                "Type": "String",
                "Default": f"arn:aws:s3:::{bucket}",
                "Description": "The upload bucket's ARN (the bucket stack's BucketArn).",
            },
            "AlarmTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic that the alarms notify; empty: the alarms only show.",
            }
        },
        "Conditions": {
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
        },
        "Resources": {
            "APIHandler": {
                # The log group exists before the function first runs, so Lambda never
                # creates one of its own (that would keep logs for ever).
                "DependsOn": ["APIHandlerLogGroup"],
                "Metadata": checkov_metadata("APIHandler"),
                "Properties": {
                    "FunctionName": name,
                    "Environment": {"Variables": {"UPLOAD_BUCKET": {"Ref": "UploadBucket"}}},
                    "Runtime": deploy.python,  # not the Python that ran `chalice package`
                    "Architectures": ["arm64"],  # no native code in the zip
                },
            },
            # The policy file names the stage's bucket: here it is the parameter.
            "ApiHandlerRole": {"Properties": {"Policies": [{
                "PolicyName": "ApiHandlerRolePolicy",
                "PolicyDocument": parameterized(policy, bucket)}]}},
            "APIHandlerLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Metadata": checkov_metadata("APIHandlerLogGroup"),
                "Properties": {
                    "LogGroupName": f"/aws/lambda/{name}",
                    "RetentionInDays": deploy.log_retention_days,
                },
            },
            "RestAPI": {
                "Metadata": checkov_metadata("RestAPI"),
                "Properties": {
                    "Name": name,
                    "GatewayResponses": dict.fromkeys(RESPONSE_TYPES, response),
                    # Every method of the stage: beyond this, API Gateway answers 429
                    # (with CORS, as DEFAULT_4XX) and the Lambda is never invoked.
                    "MethodSettings": [{
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": deploy.throttle_rate_limit,
                        "ThrottlingBurstLimit": deploy.throttle_burst_limit,
                    }],
                }
            },
            **alarms(name),
            "Dashboard": dashboard(name, quotas, deploy.malware_scan),
        },
    }  # fmt: skip
    if verifier_policy is not None:
        add_verifier(template["Resources"], name, deploy, prefix,
                     parameterized(verifier_policy, bucket), quotas)  # fmt: skip
        if deploy.malware_scan:
            add_scan_alarms(template["Resources"], name)
    if quotas:
        add_quota_table(template["Resources"], name)
    if deploy.xray:
        add_tracing(template["Resources"])
    return template


def add_quota_table(resources: dict[str, Any], name: str) -> None:
    """The quota table (chalicelib/quotas/ledger.py): on demand, its TTL on
    ``expires_at``, point-in-time recovery, encrypted; both functions get its name, and
    alarms watch its throttles and any URL issued uncounted."""
    resources["QuotaTable"] = {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Metadata": checkov_metadata("QuotaTable"),
        "Properties": {
            "TableName": f"{name}-quotas",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    }
    for function in ("APIHandler", "VerifyUpload"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        variables["UPLOAD_QUOTA_TABLE"] = {"Ref": "QuotaTable"}
    table = [{"Name": "TableName", "Value": {"Ref": "QuotaTable"}}]
    for logical, metric in (("QuotaReadThrottlesAlarm", "ReadThrottleEvents"),
                            ("QuotaWriteThrottlesAlarm", "WriteThrottleEvents")):  # fmt: skip
        # Throttled reads or writes: requests waited, or got a 503 (fail closed).
        resources[logical] = _alarm(name, "AWS/DynamoDB", metric, table,
                                    {"Statistic": "Sum", "Threshold": 0}, 1)  # fmt: skip
    # Any URL issued uncounted (UPLOAD_QUOTA_FAIL_OPEN, the table unavailable).
    resources["QuotaFailOpenAlarm"] = _alarm(
        name, "presigned-upload", "quota_fail_open", [{"Name": "service", "Value": name}],
        {"Statistic": "Sum", "Threshold": 0}, 1,
    )  # fmt: skip


FAILED_EVENTS_KEPT = 14 * 86400  # seconds: SQS's longest


def add_verifier(
    resources: dict[str, Any], name: str, deploy: DeploySettings, prefix: str,
    policy: dict[str, Any], quotas: bool = False,
) -> None:  # fmt: skip
    """The verifier (app.py's verify_upload, on S3's events, and with malware_scan on
    GuardDuty's scan results): named, on the same runtime and architecture, its own log
    group, its own role from its own policy file, its rule (app.py's own pattern) matching
    the bucket parameter, a queue for the events it gave up on, and alarms on both."""
    pattern = event_pattern({"Ref": "UploadBucket"}, prefix, deletions=quotas,
                            scans=deploy.malware_scan)  # fmt: skip
    function = f"{name}-verify_upload"
    resources["VerifyUpload"] = {
        "DependsOn": ["VerifyUploadLogGroup"],
        "Metadata": checkov_metadata("VerifyUpload"),
        "Properties": {
            "FunctionName": function,
            "Runtime": deploy.python,
            "Architectures": ["arm64"],
            "Environment": {"Variables": {"UPLOAD_BUCKET": {"Ref": "UploadBucket"}}},
            "Events": {"VerifyUploadEvent": {"Properties": {"Pattern": pattern}}},
        },
    }  # fmt: skip
    resources["VerifyUploadLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Metadata": checkov_metadata("APIHandlerLogGroup"),
        "Properties": {
            "LogGroupName": f"/aws/lambda/{function}",
            "RetentionInDays": deploy.log_retention_days,
        },
    }
    # An event the verifier failed on three times (Lambda's two retries: S3, EventBridge
    # or the quota table unreachable) is kept, not dropped: Lambda sends it, with the
    # error, to a queue of its own, kept 14 days, and an alarm says so (`make rerun-failed`
    # runs them again). Lambda sends it with the function's role, which may send to that
    # queue only (the template's own: `chalice deploy` makes no queue).
    resources["VerifyFailures"] = {
        "Type": "AWS::SQS::Queue",
        "Metadata": checkov_metadata("VerifyFailures"),
        "Properties": {"QueueName": f"{name}-verify-failures",
                       "MessageRetentionPeriod": FAILED_EVENTS_KEPT, "SqsManagedSseEnabled": True},
    }  # fmt: skip
    failures = {"Fn::GetAtt": ["VerifyFailures", "Arn"]}
    resources["VerifyUpload"]["Properties"]["EventInvokeConfig"] = {
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": failures}},
    }
    keep = {"Sid": "KeepFailedEvents", "Effect": "Allow", "Action": ["sqs:SendMessage"],
            "Resource": failures}  # fmt: skip
    document = {**policy, "Statement": [*policy["Statement"], keep]}
    resources["VerifyUploadRole"] = {"Properties": {"Policies": [
        {"PolicyName": "VerifyUploadRolePolicy", "PolicyDocument": document}]}}  # fmt: skip
    # Any verification that failed, though Lambda may retry it.
    resources["VerifierErrorsAlarm"] = _alarm(
        name, "AWS/Lambda", "Errors",
        [{"Name": "FunctionName", "Value": function}], {"Statistic": "Sum", "Threshold": 0}, 1,
    )  # fmt: skip
    # Any event given up on: its verdict, or its quota settlement, waits for an operator.
    resources["VerifyFailuresAlarm"] = _alarm(
        name, "AWS/SQS", "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["VerifyFailures", "QueueName"]}}],
        {"Statistic": "Maximum", "Threshold": 0}, 1,
    )  # fmt: skip


def add_scan_alarms(resources: dict[str, Any], name: str) -> None:
    """Alarms on the verifier's scan metrics (chalicelib/verifier/verify.py): any upload
    GuardDuty found a threat in, and any scan that ended without a result (UNSUPPORTED,
    ACCESS_DENIED, FAILED), which UPLOAD_UNSCANNED rejects or lets through."""
    service = [{"Name": "service", "Value": f"{name}-verify_upload"}]
    for logical, metric in SCAN_ALARMS.items():
        resources[logical] = _alarm(name, "presigned-upload", metric, service,
                                    {"Statistic": "Sum", "Threshold": 0}, 1)  # fmt: skip


def add_snapstart(template: dict[str, Any]) -> None:
    """SnapStart for the API function, in the template `chalice package` wrote (Chalice
    cannot publish versions: aws/chalice#2147). SAM publishes a version on every deploy
    and points the alias ``live`` at it; API Gateway's integrations, and its permission
    to invoke, name the alias, so that every request runs on the snapshotted version."""
    resources = template["Resources"]
    resources["APIHandler"]["Properties"].update(
        {
            "AutoPublishAlias": SNAPSTART_ALIAS,
            "SnapStart": {"ApplyOn": "PublishedVersions"},
            # A new version for any change (timeout, tracing, runtime), not only the code's.
            "AutoPublishAliasAllProperties": True,
        }
    )
    alias = f"APIHandlerAlias{SNAPSTART_ALIAS}"  # the logical id SAM gives the alias
    for methods in resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"].values():
        for operation in methods.values():
            integration = operation.get("x-amazon-apigateway-integration", {})
            if integration.get("type") != "aws_proxy":
                continue  # the CORS preflights: mock integrations
            uri = integration["uri"]["Fn::Sub"]
            if "${APIHandler.Arn}" not in uri:  # Chalice changed its template: say so
                raise ValueError(f"an integration that does not invoke APIHandler: {uri}")
            integration["uri"]["Fn::Sub"] = uri.replace("${APIHandler.Arn}", f"${{{alias}}}")
    resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] = {"Ref": alias}


def parameterized(value: Any, bucket: str) -> Any:
    """A policy file's ``value`` for the template: the stage's bucket ARN (as the file
    names it, for `chalice deploy`) becomes the ``UploadBucketArn`` parameter, and the
    event bus in any region and account (``arn:aws:events:*:*:``) the stack's own. A
    string that names the parameter alone becomes a ``Ref``, any other an ``Fn::Sub``."""
    if isinstance(value, dict):
        return {key: parameterized(item, bucket) for key, item in value.items()}
    if isinstance(value, list):
        return [parameterized(item, bucket) for item in value]
    if not isinstance(value, str):
        return value
    arn = BUCKET_ARN.format(bucket=bucket)
    if value == arn:
        return {"Ref": "UploadBucketArn"}
    if value.startswith(arn + "/"):
        return {"Fn::Sub": "${UploadBucketArn}" + value[len(arn) :]}
    if value.startswith(ANY_REGION_TABLE.format(table="")):
        return {"Fn::GetAtt": ["QuotaTable", "Arn"]}  # the stage's own table
    if value.startswith(ANY_REGION_BUS.format(bus="")):
        return {"Fn::Sub": "arn:aws:events:${AWS::Region}:${AWS::AccountId}:"
                + value[len("arn:aws:events:*:*:") :]}  # fmt: skip
    return value


def stage_policy(stage: str, function: str | None = None) -> dict[str, Any]:
    """The stage's policy file, .chalice/policy-<stage>.json, or that of one of its
    functions (its ``lambda_functions`` entry)."""
    config = stage_config(stage)
    if function is not None:
        config = config["lambda_functions"][function]
    policy: dict[str, Any] = json.loads((CONFIG.parent / config["iam_policy_file"]).read_text())
    return policy


# What the function's role needs to send traces, and only when tracing is on. X-Ray has
# no resource-level permissions for these two actions, hence "*".
TRACING_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def add_tracing(resources: dict[str, Any]) -> None:
    """Trace API Gateway and the function with X-Ray (deploy.xray): the function is
    created after its role may write traces, as Lambda checks that."""
    resources["TracingPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "WriteTraces",
            "Roles": [{"Ref": "ApiHandlerRole"}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": TRACING_ACTIONS, "Resource": "*"}],
            },
        },
    }
    resources["APIHandler"]["DependsOn"].append("TracingPolicy")
    resources["APIHandler"]["Properties"]["Tracing"] = "Active"
    resources["RestAPI"]["Properties"]["TracingEnabled"] = True


# checkov's findings this template keeps, each with its reason (as resource Metadata,
# which checkov reads: JSON has no comments). `make lint-infra` runs checkov.
CHECKOV_SKIPS = {
    "VerifyFailures": {
        "CKV_AWS_27": "encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which this "
        "check predates; a KMS key would add a key policy and kms: permissions to guard "
        "failed events that hold an object's key, never its bytes",
    },
    "RestAPI": {
        "CKV_AWS_120": "API caching would hand one caller's signed URLs to another",
        "CKV_AWS_73": "X-Ray is a stage option (deploy.xray; $5 per million traces)",
        "CKV_AWS_76": "access logs need the account-wide API Gateway CloudWatch role; the "
        "function logs every request it sees, and API Gateway's 4XXError and Count the rest",
    },
    "APIHandler": {
        "CKV_AWS_116": "a dead-letter queue serves asynchronous invocations; API Gateway "
        "invokes synchronously and the caller sees every error",
        "CKV_AWS_117": "a VPC adds cold start and needs an S3 endpoint; the function "
        "reaches only S3, with its role",
        "CKV_AWS_115": "stage throttling bounds concurrency; reserved concurrency is "
        "optional, as accounts with a quota of 10 refuse it (docs/deployment.md)",
        "CKV_AWS_173": "the environment holds settings, no secret",
    },
    "VerifyUpload": {
        "CKV_AWS_116": "S3's events reach it through EventBridge, which retries; a failed "
        "verification fires VerifierErrorsAlarm, and a new event judges the object again",
        "CKV_AWS_117": "a VPC adds cold start and needs S3 and EventBridge endpoints; the "
        "function reaches only those, with its role",
        "CKV_AWS_115": "EventBridge invokes it once per new object; the API's throttling "
        "bounds how many objects can appear",
        "CKV_AWS_173": "the environment holds settings, no secret (the webhook key is read "
        "from SSM or Secrets Manager)",
    },
    "QuotaTable": {
        "CKV_AWS_119": "encrypted at rest with the AWS managed key (aws/dynamodb); the "
        "items hold counts and upload ids, no content; a customer key adds cost and a key "
        "policy",
    },
    "APIHandlerLogGroup": {
        "CKV_AWS_158": "the log holds no secret (tests/functional/test_logs.py) and "
        "CloudWatch Logs encrypts at rest; a KMS key adds cost and a key policy",
    },
}


def checkov_metadata(logical: str) -> dict[str, Any]:
    skips = CHECKOV_SKIPS[logical]
    return {"checkov": {"skip": [{"id": i, "comment": c} for i, c in skips.items()]}}


def dashboard(name: str, quotas: bool = False, scans: bool = False) -> dict[str, Any]:
    """A CloudWatch dashboard named after the function: the request log's metrics
    (chalicelib/core/metrics.py), API Gateway's and Lambda's, the quotas' and the malware
    scan's (where on), and the alarms."""

    def search(metric: str, stat: str, dimensions: str = "service,route,status_class") -> Any:
        query = (f"SEARCH('{{presigned-upload,{dimensions}}} service=\"{name}\" "
                 f"MetricName=\"{metric}\"', '{stat}', 300)")  # fmt: skip
        return {"expression": query, "id": metric.replace("_", ""), "label": ""}

    def widget(title: str, metrics: list[Any], stat: str = "Sum") -> dict[str, Any]:
        return {"type": "metric", "width": 12, "height": 6, "properties": {
            "title": title, "region": "${AWS::Region}", "stat": stat, "period": 300,
            "view": "timeSeries", "metrics": metrics}}  # fmt: skip

    api = ["ApiName", name, "Stage", "api"]
    widgets = [
        widget("Requests by route and status class", [[search("requests", "Sum")]]),
        widget("Latency p99 by route (ms)", [[search("latency_ms", "p99")]], "p99"),
        widget("Errors by code", [[search("errors", "Sum", "service,error")]]),
        widget(
            "URLs issued, multipart completions, cold starts",
            [
                ["presigned-upload", m, "service", name]
                for m in ("urls_issued", "multipart_completions", "cold_starts")
            ],
        ),
        widget(
            "API Gateway: requests, 4xx, 5xx (incl. throttled and refused)",
            [["AWS/ApiGateway", m, *api] for m in ("Count", "4XXError", "5XXError")],
        ),
        widget(
            "Lambda: concurrency, throttles, errors",
            [
                ["AWS/Lambda", m, "FunctionName", name]
                for m in ("ConcurrentExecutions", "Throttles", "Errors")
            ],
            "Maximum",
        ),
    ]
    if quotas:
        table = ["TableName", f"{name}-quotas"]
        widgets.append(widget(
            "Quotas: 429 QuotaExceeded, URLs issued uncounted, table throttles",
            [["presigned-upload", "errors", "service", name, "error", "QuotaExceeded"],
             ["presigned-upload", "quota_fail_open", "service", name],
             *(["AWS/DynamoDB", m, *table] for m in ("ReadThrottleEvents", "WriteThrottleEvents"))],
        ))  # fmt: skip
    if scans:
        widgets.append(widget(
            "Malware scan: threats found, uploads without a scan result",
            [["presigned-upload", m, "service", f"{name}-verify_upload"]
             for m in SCAN_ALARMS.values()],
        ))  # fmt: skip
    shown = ALARMS + (QUOTA_ALARMS if quotas else ()) + (tuple(SCAN_ALARMS) if scans else ())
    alarm_arns = [{"Fn::GetAtt": [logical, "Arn"]} for logical in shown]
    body = {"widgets": [*widgets, {"type": "alarm", "width": 24, "height": 3, "properties": {
        "title": "Alarms", "alarms": ["@ALARMS@"]}}]}  # fmt: skip
    # The body is one string: the alarms' ARNs are joined into it by CloudFormation.
    before, after = json.dumps(body).split('"@ALARMS@"')
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": name,
            "DashboardBody": {"Fn::Join": ["", [
                {"Fn::Sub": before}, *_joined(alarm_arns), {"Fn::Sub": after}]]},
        },
    }  # fmt: skip


def _joined(arns: list[Any]) -> list[Any]:
    """``"arn1","arn2"``: each ARN quoted, commas between, as parts of an Fn::Join."""
    parts: list[Any] = []
    for n, arn in enumerate(arns):
        parts += [", " if n else "", '"', arn, '"']
    return parts


ALARMS = ("ApiServerErrorRateAlarm", "ApiLatencyP99Alarm", "LambdaThrottlesAlarm",
          "LambdaErrorsAlarm")  # fmt: skip
QUOTA_ALARMS = ("QuotaReadThrottlesAlarm", "QuotaWriteThrottlesAlarm", "QuotaFailOpenAlarm")
SCAN_ALARMS = {"MalwareFoundAlarm": "malware_found", "UnscannedUploadsAlarm": "unscanned"}


def alarms(name: str) -> dict[str, Any]:
    """CloudWatch alarms on what a user would notice, notifying AlarmTopicArn if given."""
    api = [{"Name": "ApiName", "Value": name}, {"Name": "Stage", "Value": "api"}]
    function = [{"Name": "FunctionName", "Value": name}]
    specs = {
        # More than 1% of requests answered 5xx over 5 minutes (S3 unreachable, a
        # misconfiguration): 5XXError is 0 or 1 per request, so its average is the rate.
        "ApiServerErrorRateAlarm": ("AWS/ApiGateway", "5XXError", api,
                                    {"Statistic": "Average", "Threshold": 0.01}, 1),
        # p99 latency over 5 s for 15 minutes: S3 slow, or the function starved.
        "ApiLatencyP99Alarm": ("AWS/ApiGateway", "Latency", api,
                               {"ExtendedStatistic": "p99", "Threshold": 5000}, 3),
        # Any invocation throttled: reserved concurrency, or the account's limit.
        "LambdaThrottlesAlarm": ("AWS/Lambda", "Throttles", function,
                                 {"Statistic": "Sum", "Threshold": 0}, 1),
        # Any invocation that failed outside the app's own error handling.
        "LambdaErrorsAlarm": ("AWS/Lambda", "Errors", function,
                              {"Statistic": "Sum", "Threshold": 0}, 1),
    }  # fmt: skip
    return {logical: _alarm(name, *spec) for logical, spec in specs.items()}


def _alarm(name: str, namespace: str, metric: str, dimensions: list[dict[str, Any]],
           statistic: dict[str, Any], periods: int) -> dict[str, Any]:  # fmt: skip
    """One alarm, notifying AlarmTopicArn if given, over 5-minute periods."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{name}: {metric} ({namespace})",
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "EvaluationPeriods": periods,
            **statistic,
            "AlarmActions": {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}],
                                        {"Ref": "AWS::NoValue"}]},
            "Period": 300,
            "TreatMissingData": "notBreaching",
            "ComparisonOperator": "GreaterThanThreshold",
        },
    }  # fmt: skip


def package(stage: str, out: Path) -> Path:
    """Write ``out/sam.json`` and ``out/deployment.zip`` for ``stage``; return the template."""
    env = stage_environment(stage)
    policies.check(stage)
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge.json"
    deploy = DeploySettings.for_stage(stage)
    events = verification_on(env) or quotas_on(env)
    verifier = stage_policy(stage, "verify_upload") if events else None
    template = merge_template(
        stage, cors_allow_origin(env), deploy, env["UPLOAD_BUCKET"], stage_policy(stage),
        verifier, env.get("UPLOAD_PREFIX", "put_folder/"), quotas=quotas_on(env),
    )  # fmt: skip
    merge.write_text(json.dumps(template, indent=2) + "\n")
    chalice = Path(sys.executable).with_name("chalice")
    # Chalice insists on a region, yet its template takes the region from the stack
    # (AWS::Region): any value gives the same bytes, so do not make the caller pick one.
    env = {"AWS_DEFAULT_REGION": "us-east-1", **os.environ}
    # Chalice's progress goes to stderr: stdout is for what the caller asked for.
    done = subprocess.run(
        [str(chalice), "package", "--stage", stage, "--merge-template", str(merge), str(out)],
        cwd=PROJECT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    sys.stderr.write(done.stdout)
    if deploy.snapstart:
        sam = out / "sam.json"
        template = json.loads(sam.read_text())
        add_snapstart(template)
        sam.write_text(json.dumps(template, indent=2) + "\n")
    if add_bytecode(out / "deployment.zip", deploy.python) is None:
        print(f"warning: no {deploy.python} here to compile the zip's modules with: it ships "
              "without bytecode, so each cold start compiles them (docs/benchmarks.md)",
              file=sys.stderr)  # fmt: skip
    return out / "sam.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("--stage", required=True, choices=stage_names())
    parser.add_argument("out", type=Path, help="directory for sam.json and deployment.zip")
    args = parser.parse_args(argv)
    try:
        print(package(args.stage, args.out))
    except policies.PolicyOutOfDate as exc:
        print(f"{args.stage}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
