"""`make deploy STAGE=prod`: the bucket stack, then the API stack wired from its outputs.

    python -m infra.deploy --stage prod [--dry-run] [--waf] [--alarm-topic ARN]

1. Check the stage, offline: a stage meant for AWS (not ``local*``), no placeholder value
   left from this repository's examples, neither open (``AUTH_MODE=none``) nor open to
   every origin (``CORS_ALLOW_ORIGIN='*'``) unless its ``deploy`` object allows that by
   name (the plan then warns), every setting valid as the function will read it, and
   policy files that match config.json (`make policies`).
2. Package it (infra/package.py): ``build/<stage>/sam.json`` and ``deployment.zip``.
   ``--dry-run`` stops here, before the first AWS call, and prints what it would do.
3. Deploy the bucket stack ``presigned-upload-<stage>-bucket`` (infra/bucket.yaml) with
   the stage's ``UPLOAD_BUCKET`` and ``CORS_ALLOW_ORIGIN``, and read its outputs.
4. Create or reuse the artifacts bucket ``presigned-upload-artifacts-<account>-<region>``
   (private), and upload the zip and the template to it.
5. Deploy the API stack ``presigned-upload-<stage>``, its ``UploadBucket`` and
   ``UploadBucketArn`` taken from the bucket stack's outputs: nothing copied by hand.
6. With ``--waf``, the rate limits per user and IP (infra/waf.yaml) on the API's stage.
7. Print the API's URL.

Each stack is deployed through a change set, as ``aws cloudformation deploy`` does: a
stack that would not change is left as it is. The AWS calls use the caller's usual
credentials and region (``AWS_PROFILE``, ``AWS_REGION``, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.core.auth import AuthConfig
from chalicelib.core.errors import ConfigError
from chalicelib.core.settings import Settings, cors_allow_origin
from infra import policies
from infra.package import package
from infra.stages import (
    APP_NAME,
    PROJECT,
    DeploySettings,
    stage_config,
    stage_environment,
    stage_names,
)

INFRA = Path(__file__).resolve().parent
# Values that only this repository's examples use: deploying them would point a stage at
# a bucket, user pool or site that is not the team's.
PLACEHOLDERS = ("example-uploads-", "_EXAMPLE", "example.com", "123456789012")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]  # a role; the SAM transform


PUBLIC_ACCESS_BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                        "RestrictPublicBuckets")  # fmt: skip


class DeployRefused(Exception):
    """The stage cannot be deployed as configured; the message lists what to change."""


def check_stage(stage: str) -> dict[str, str]:
    """The stage's environment, once it is fit to deploy; else DeployRefused naming every
    problem and where to fix it."""
    if stage.startswith("local"):
        raise DeployRefused(f"{stage} is a stage for `make run` only; deploy dev or prod")
    env = stage_environment(stage)
    problems = [
        f"{name}={value!r} is this repository's example; set your own in .chalice/config.json"
        for name, value in sorted(env.items())
        if any(placeholder in value for placeholder in PLACEHOLDERS)
    ]
    # Chalice merges a function's own variables over the stage's: then neither this check
    # nor the policy files would see what the function runs with.
    problems += [
        f"lambda_functions.{name}.environment_variables: a function's own settings are "
        "not checked; put them in the stage's environment_variables"
        for name, function in sorted(stage_config(stage).get("lambda_functions", {}).items())
        if "environment_variables" in function
    ]
    try:
        deploy = DeploySettings.for_stage(stage)
        problems += [text for text, allowed in openings(stage, env, deploy) if not allowed]
        settings = Settings.from_env({**env, "AWS_REGION": "us-east-1"})  # Lambda gives one
        if settings.malware_scan and not settings.no_overwrite:
            # A scan names the bytes by their ETag, an MD5: without If-None-Match, a second
            # PUT of colliding bytes to the same URL would carry the first one's verdict.
            problems.append(
                "UPLOAD_MALWARE_SCAN needs UPLOAD_NO_OVERWRITE=true on a deployed stage: a "
                "scan result names the bytes by their MD5 ETag, and colliding bytes PUT again "
                "to the same URL would take the first one's verdict"
            )
        cors_allow_origin(env)
        AuthConfig.from_env(env)
        policies.check(stage)
    except (ConfigError, ValueError, policies.PolicyOutOfDate) as exc:
        problems.append(str(exc))
    if problems:
        raise DeployRefused(f"{stage} cannot be deployed:\n- " + "\n- ".join(problems))
    return env


def openings(stage: str, env: dict[str, str], deploy: DeploySettings) -> list[tuple[str, bool]]:
    """What would leave the stage open, each with whether its ``deploy`` object allows it:
    anyone may call (AUTH_MODE=none), every site's pages may call (a ``*`` origin)."""
    found = []
    if env.get("AUTH_MODE") == "none":
        found.append((
            f"AUTH_MODE='none' on {stage} lets anyone on the internet get upload URLs into "
            "your bucket; set cognito or iam, or \"allow_open\": true in the stage's "
            "\"deploy\" object if it really is meant to be open",
            deploy.allow_open,
        ))  # fmt: skip
    if cors_allow_origin(env) == "*":
        found.append((
            f"CORS_ALLOW_ORIGIN='*' on {stage} lets every site's pages upload with your "
            "users' URLs; set the one origin of your app, like https://app.acme.com, or "
            "\"allow_any_origin\": true in the stage's \"deploy\" object",
            deploy.allow_any_origin,
        ))  # fmt: skip
    return found


def warnings(stage: str, env: dict[str, str]) -> list[str]:
    """The openings the stage allows itself: printed by the plan and the deploy."""
    deploy = DeploySettings.for_stage(stage)
    return [f"warning: {text.split(';')[0]} (allowed by the stage's deploy object)"
            for text, allowed in openings(stage, env, deploy) if allowed]  # fmt: skip


def bucket_parameters(stage: str, env: dict[str, str]) -> dict[str, str]:
    """The bucket stack's parameters from the stage's settings."""
    settings = Settings.from_env({**env, "AWS_REGION": "us-east-1"})
    deploy = DeploySettings.for_stage(stage)
    parameters = {"BucketName": env["UPLOAD_BUCKET"], "AllowedOrigin": env["CORS_ALLOW_ORIGIN"],
                  "QuarantinePrefix": settings.quarantine_prefix,
                  "AbortIncompleteMultipartAfterDays": str(deploy.abort_incomplete_multipart_days),
                  "MalwareScan": str(deploy.malware_scan).lower(),
                  "UploadPrefix": settings.prefix}  # fmt: skip
    if settings.unclaimed_days is not None:
        parameters["UnclaimedUploadDays"] = str(settings.unclaimed_days)
    return parameters


@dataclass(frozen=True)
class Stacks:
    """The CloudFormation stacks of a stage."""

    stage: str

    @property
    def bucket(self) -> str:
        return f"{APP_NAME}-{self.stage}-bucket"

    @property
    def api(self) -> str:
        return f"{APP_NAME}-{self.stage}"

    @property
    def waf(self) -> str:
        return f"{APP_NAME}-{self.stage}-waf"


def plan(stage: str, env: dict[str, str], waf: bool, alarm_topic: str) -> list[str]:
    """What a deploy does with AWS, one line per step (what --dry-run prints)."""
    stacks = Stacks(stage)
    steps = [
        f"deploy stack {stacks.bucket} from infra/bucket.yaml: "
        + " ".join(f"{k}={v}" for k, v in bucket_parameters(stage, env).items()),
        f"read {stacks.bucket}'s outputs BucketName and BucketArn",
        f"create or reuse the artifacts bucket {APP_NAME}-artifacts-<account>-<region>; "
        f"upload build/{stage}/deployment.zip and build/{stage}/sam.json",
        f"deploy stack {stacks.api} from build/{stage}/sam.json: UploadBucket and "
        f"UploadBucketArn from {stacks.bucket}'s outputs, AlarmTopicArn={alarm_topic!r}",
    ]
    if waf:
        steps.append(f"deploy stack {stacks.waf} from infra/waf.yaml: RestApiId from "
                     f"{stacks.api}'s output RestAPIId")  # fmt: skip
    steps.append(f"print {stacks.api}'s output EndpointURL")
    return steps


class Deployer:
    """The AWS calls of a deploy. ``client`` makes a boto3 client for a service name, so
    a test can hand it stubbed ones."""

    def __init__(self, client: Callable[[str], Any], wait_delay: int = 5) -> None:
        self._cfn = client("cloudformation")
        self._s3 = client("s3")
        self._sts = client("sts")
        self._region: str = self._cfn.meta.region_name
        self._wait = {"Delay": wait_delay, "MaxAttempts": 720}

    def deploy(self, stage: str, env: dict[str, str], out: Path, waf: bool,
               alarm_topic: str) -> str:  # fmt: skip
        """Deploy the stage's stacks; the API's URL."""
        stacks = Stacks(stage)
        bucket = self.stack(stacks.bucket, {"TemplateBody": (INFRA / "bucket.yaml").read_text()},
                            bucket_parameters(stage, env))  # fmt: skip
        artifacts = self.artifacts_bucket()
        template = json.loads((out / "sam.json").read_text())
        code = self.upload(artifacts, stage, out / "deployment.zip", ".zip")
        template["Resources"]["APIHandler"]["Properties"]["CodeUri"] = {
            "Bucket": artifacts, "Key": code}  # fmt: skip
        packaged = out / "packaged.json"
        packaged.write_text(json.dumps(template, indent=2) + "\n")
        key = self.upload(artifacts, stage, packaged, ".json")
        url = f"https://{artifacts}.s3.{self._region}.amazonaws.com/{key}"
        api = self.stack(stacks.api, {"TemplateURL": url},
                         {"UploadBucket": bucket["BucketName"],
                          "UploadBucketArn": bucket["BucketArn"],
                          "AlarmTopicArn": alarm_topic})  # fmt: skip
        if waf:
            self.stack(stacks.waf, {"TemplateBody": (INFRA / "waf.yaml").read_text()},
                       {"RestApiId": api["RestAPIId"]})  # fmt: skip
        return api["EndpointURL"]

    def stack(self, name: str, template: dict[str, str], parameters: dict[str, str]
              ) -> dict[str, str]:  # fmt: skip
        """Create or update ``name`` through a change set; its outputs."""
        exists = self._status(name) not in (None, "REVIEW_IN_PROGRESS")
        change_set = f"deploy-{int(time.time())}"
        self._cfn.create_change_set(
            StackName=name,
            ChangeSetName=change_set,
            ChangeSetType="UPDATE" if exists else "CREATE",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=CAPABILITIES,
            **template,
        )
        described = self._wait_for_change_set(name, change_set)
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if "didn't contain changes" not in reason and "No updates" not in reason:
                raise DeployRefused(f"{name}: the change set failed: {reason}")
            self._cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            print(f"{name}: no changes", file=sys.stderr)
        else:
            self._cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
            waiter = "stack_update_complete" if exists else "stack_create_complete"
            self._cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=self._wait)
            print(f"{name}: deployed", file=sys.stderr)
        (stack,) = self._cfn.describe_stacks(StackName=name)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def _status(self, name: str) -> str | None:
        try:
            (stack,) = self._cfn.describe_stacks(StackName=name)["Stacks"]
        except self._cfn.exceptions.ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        status: str = stack["StackStatus"]
        return status

    def _wait_for_change_set(self, name: str, change_set: str) -> dict[str, Any]:
        for _ in range(self._wait["MaxAttempts"]):
            described: dict[str, Any] = self._cfn.describe_change_set(
                StackName=name, ChangeSetName=change_set
            )
            if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
                return described
            time.sleep(self._wait["Delay"])
        raise DeployRefused(f"{name}: the change set {change_set} was not ready in time")

    def artifacts_bucket(self) -> str:
        """The account's private bucket for deployment artifacts in this region, created
        on first use (objects expire after 30 days)."""
        account = self._sts.get_caller_identity()["Account"]
        name = f"{APP_NAME}-artifacts-{account}-{self._region}"
        try:
            self._s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
            return name
        except self._s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
        if self._region == "us-east-1":
            self._s3.create_bucket(Bucket=name)
        else:
            self._s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": self._region}
            )
        self._s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCKS, True),
        )
        self._s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [{"ID": "ExpireArtifacts", "Status": "Enabled",
                                               "Filter": {"Prefix": ""},
                                               "Expiration": {"Days": 30}}]},
        )  # fmt: skip
        return name

    def upload(self, bucket: str, stage: str, path: Path, suffix: str) -> str:
        """Upload ``path`` under a key named by its content; the key."""
        key = f"{stage}/{hashlib.sha256(path.read_bytes()).hexdigest()}{suffix}"
        self._s3.upload_file(str(path), bucket, key)
        return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", required=True, choices=stage_names())
    parser.add_argument("--dry-run", action="store_true", help="stop before the first AWS call")
    parser.add_argument("--waf", action="store_true", help="also deploy infra/waf.yaml")
    parser.add_argument("--alarm-topic", default="", help="an SNS topic ARN for the alarms")
    args = parser.parse_args(argv)
    try:
        env = check_stage(args.stage)
    except DeployRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in warnings(args.stage, env):
        print(warning, file=sys.stderr)
    out = PROJECT / "build" / args.stage
    package(args.stage, out)
    steps = plan(args.stage, env, args.waf, args.alarm_topic)
    if args.dry_run:
        print(f"{args.stage}: checked and packaged in build/{args.stage}; a deploy would:")
        print("\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1)))
        return 0
    import boto3  # only now: a dry run needs no SDK

    url = Deployer(lambda service: boto3.client(service)).deploy(  # type: ignore[call-overload]
        args.stage, env, out, args.waf, args.alarm_topic
    )
    print(f"{args.stage} is deployed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
