"""The IAM policy files of each stage, written from .chalice/config.json.

    python -m infra.policies     # `make policies`: (re)write .chalice/policy-<stage>*.json

`chalice deploy` sends a stage's ``iam_policy_file`` to IAM as it is, so each file names
the stage's bucket as a real ARN (``arn:aws:s3:::<UPLOAD_BUCKET>``) and the event bus in
any region and account (``arn:aws:events:*:*:event-bus/<bus>``), both valid IAM. `make
package` (infra/package.py) turns the bucket's ARN back into the template's
``UploadBucketArn`` parameter, which `make deploy` wires to the bucket stack's output,
and scopes the bus to the stack's region and account.

config.json is the one source of truth: a stage's bucket, prefix, authorization and
verification settings decide its statements, so a changed bucket is one `make policies`
away, and the deploy check refuses a file that no longer matches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.core.auth import AuthConfig
from chalicelib.core.errors import ConfigError
from chalicelib.core.settings import Settings, verification_on
from infra.stages import APP_NAME, CONFIG, stage_config, stage_environment, stage_names

LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# The partition's ARN prefixes. Only the commercial partition ("aws") is written: the
# China and GovCloud partitions need their own ARNs (docs/deployment.md).
BUCKET_ARN = "arn:aws:s3:::{bucket}"
ANY_REGION_BUS = "arn:aws:events:*:*:event-bus/{bus}"
ANY_REGION_TABLE = "arn:aws:dynamodb:*:*:table/{table}"
# The quota table's items the code reads and writes (chalicelib/quotas/ledger.py): a
# principal's counters and limits (q#...) and each upload's reservation (u#...).
QUOTA_KEYS = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["q#*", "u#*"]}}


class PolicyOutOfDate(Exception):
    """A policy file no longer matches config.json; the message names it and the fix."""


def settings_of(stage: str) -> Settings:
    # Lambda provides the region; the policies do not depend on it.
    return Settings.from_env({**stage_environment(stage), "AWS_REGION": "us-east-1"})


def _statement(sid: str, actions: list[str], resource: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions,
                                 "Resource": resource}  # fmt: skip
    if condition:
        statement["Condition"] = condition
    return statement


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def api_policy(stage: str) -> dict[str, Any]:
    """The API function's role: its own log group, and the stage's keys only."""
    env = stage_environment(stage)
    settings = settings_of(stage)
    bucket = BUCKET_ARN.format(bucket=settings.bucket)
    verifying = verification_on(env)
    # With auth on, every key is <prefix><principal>/<uuid>: nothing directly in the prefix.
    keys = settings.prefix + ("*/*" if AuthConfig.from_env(env).required else "*")
    quarantined = settings.quarantine_prefix + keys
    # PutObject: the presigned PUT, POST and part URLs, CreateMultipartUpload and
    # CompleteMultipartUpload. GetObject: the HEAD of status, the download URL.
    # ListMultipartUploadParts: resuming, and the size check on completion.
    # AbortMultipartUpload: DELETE /s3/multipart/{id}, and refusing an oversize upload.
    # Tagging (with verification): the verdict read by status, a claim, and a PUT that
    # carries x-amz-tagging.
    actions = ["s3:PutObject", "s3:GetObject",
               "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]  # fmt: skip
    # A PUT or create that carries tags (UPLOAD_UNCLAIMED_DAYS) needs PutObjectTagging
    # from the signer, and a claim rewrites them, verifying or not.
    if verifying or settings.unclaimed_days is not None:
        actions += ["s3:GetObjectTagging", "s3:PutObjectTagging"]
    statements = [
        _statement("WriteOwnLogs", LOG_ACTIONS, _log_group(f"{APP_NAME}-{stage}")),
        _statement("UploadsUnderPrefix", actions, f"{bucket}/{keys}"),
        # ListBucket, only for keys under the prefix: status finds <uuid>.<ext> by prefix,
        # and without it S3 answers a HEAD of a missing key 403 instead of 404; with
        # verification, the same in quarantine (a rejected upload's reason).
        _statement(
            "FindUploadsUnderPrefix",
            ["s3:ListBucket"],
            bucket,
            StringLike={"s3:prefix": [keys, *([quarantined] if verifying else [])]},
        ),
    ]
    if verifying:
        statements.append(_statement("ReadRejectedUploads", ["s3:GetObjectTagging"],
                                     f"{bucket}/{quarantined}"))  # fmt: skip
    if settings.quotas_on:
        # A reservation (a transaction of a Put and two Updates), GET /quota (BatchGet),
        # the limits (Get), and an abort or an expired reservation given back (Updates:
        # an upload's item is kept, released, never deleted). Never Scan or Query.
        statements.append(_statement(
            "CountQuotas",
            ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
             "dynamodb:UpdateItem"],
            ANY_REGION_TABLE.format(table=settings.quota_table), **QUOTA_KEYS,
        ))  # fmt: skip
    return _document(*statements)


def verifier_policy(stage: str) -> dict[str, Any]:
    """The verifier's role: read and judge what lands, move rejects to quarantine,
    publish the verdict, and read the webhook's key if there is one; with quotas, settle
    them (on a stage with quotas and no verification, only that)."""
    settings = settings_of(stage)
    log = _statement("WriteOwnLogs", LOG_ACTIONS, _log_group(f"{APP_NAME}-{stage}-verify_upload"))
    quotas = _statement(
        "SettleQuotas", ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        ANY_REGION_TABLE.format(table=settings.quota_table), **QUOTA_KEYS,
    )  # fmt: skip
    if not settings.verify:
        return _document(log, quotas)
    bucket = BUCKET_ARN.format(bucket=settings.bucket)
    keys = settings.prefix + "*"
    bus = settings.event_bus
    statements = [
        log,
        # HEAD, the ranged GET and the tags; DeleteObject: moving a rejected upload.
        _statement(
            "JudgeUploads",
            ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObject"],
            f"{bucket}/{keys}",
        ),
        # So that S3 answers a HEAD of a missing object 404, not 403 (a 403 is then a
        # fault, and fails the invocation).
        _statement("FindUploads", ["s3:ListBucket"], bucket, StringLike={"s3:prefix": [keys]}),
        # The copy into quarantine, with its tags.
        _statement(
            "QuarantineRejected",
            ["s3:PutObject", "s3:PutObjectTagging"],
            f"{bucket}/{settings.quarantine_prefix}{keys}",
        ),
        _statement(
            "PublishVerdicts",
            ["events:PutEvents"],
            bus if bus.startswith("arn:") else ANY_REGION_BUS.format(bus=bus),
        ),
    ]
    secret = settings.webhook_secret if settings.webhook_url else None
    if secret is not None and secret.startswith("arn:"):
        statements.append(_statement("ReadWebhookKey", ["secretsmanager:GetSecretValue"], secret))
    elif secret is not None:
        # An SSM parameter's ARN names it without its leading '/'. A SecureString under
        # the account's aws/ssm key needs no KMS permission; a customer key does.
        parameter = f"arn:aws:ssm:*:*:parameter/{secret.lstrip('/')}"
        statements.append(_statement("ReadWebhookKey", ["ssm:GetParameter"], parameter))
    if settings.quotas_on:
        statements.append(quotas)
    return _document(*statements)


def _log_group(function: str) -> str:
    return f"arn:aws:logs:*:*:log-group:/aws/lambda/{function}:*"


def policy_files() -> dict[Path, dict[str, Any]]:
    """Every policy file config.json names, with the policy it should hold."""
    files: dict[Path, dict[str, Any]] = {}
    for stage in stage_names():
        config = stage_config(stage)
        files[CONFIG.parent / config["iam_policy_file"]] = api_policy(stage)
        verifier = config.get("lambda_functions", {}).get("verify_upload")
        if verifier is not None:
            files[CONFIG.parent / verifier["iam_policy_file"]] = verifier_policy(stage)
    return files


def render(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"


def out_of_date(stage: str | None = None) -> list[str]:
    """The names of the policy files (of ``stage``, or of every stage) whose content is
    not what config.json makes of them."""
    names = None
    if stage is not None:
        config = stage_config(stage)
        functions = config.get("lambda_functions", {}).values()
        names = {config["iam_policy_file"]} | {
            f["iam_policy_file"] for f in functions if "iam_policy_file" in f}  # fmt: skip
    return [
        path.name
        for path, policy in policy_files().items()
        if (names is None or path.name in names)
        and (not path.exists() or path.read_text() != render(policy))
    ]


def check(stage: str) -> None:
    """PolicyOutOfDate if one of the stage's policy files does not match config.json."""
    stale = out_of_date(stage)
    if stale:
        raise PolicyOutOfDate(
            f"{', '.join(stale)} does not match .chalice/config.json (another bucket, "
            "prefix or setting): run `make policies` and commit the result"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.policies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        files = policy_files()
    except ConfigError as exc:
        print(f"no policy written: {exc}", file=sys.stderr)
        return 2
    for path, policy in files.items():
        if not path.exists() or path.read_text() != render(policy):
            path.write_text(render(policy))
            print(f"wrote {path.relative_to(CONFIG.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
