"""The verifier's role as infra/policies.py writes it for settings no shipped stage has:
a webhook key in SSM or Secrets Manager, and another event bus."""

from __future__ import annotations

import json

import pytest

from infra import stages
from infra.policies import api_policy, verifier_policy

POOL = "arn:aws:cognito-idp:eu-west-1:210987654321:userpool/eu-west-1_Ab12"
BASE = {"UPLOAD_BUCKET": "acme-uploads", "AUTH_MODE": "cognito", "UPLOAD_VERIFY": "true",
        "COGNITO_USER_POOL_ARNS": POOL}  # fmt: skip
HOOK = {"UPLOAD_WEBHOOK_URL": "https://hooks.acme.com/uploads"}


@pytest.fixture
def stage(tmp_path, monkeypatch):
    """write(env): config.json with one stage, "s", holding ``env``."""
    path = tmp_path / "config.json"
    monkeypatch.setattr(stages, "CONFIG", path)

    def write(env):
        path.write_text(json.dumps({"app_name": "presigned-upload", "stages": {
            "s": {"environment_variables": {**BASE, **env}}}}))  # fmt: skip

    return write


def statements(stage_name="s"):
    return {s["Sid"]: s for s in verifier_policy(stage_name)["Statement"]}


def test_a_webhook_key_in_ssm_may_be_read_and_only_that_parameter(stage):
    stage({**HOOK, "UPLOAD_WEBHOOK_SECRET": "/uploads/webhook-key"})
    assert statements()["ReadWebhookKey"] == {
        "Sid": "ReadWebhookKey", "Effect": "Allow", "Action": ["ssm:GetParameter"],
        "Resource": "arn:aws:ssm:*:*:parameter/uploads/webhook-key"}  # fmt: skip


def test_a_webhook_key_in_secrets_manager_may_be_read_and_only_that_secret(stage):
    secret = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:uploads-hook-AbCdEf"
    stage({**HOOK, "UPLOAD_WEBHOOK_SECRET": secret})
    assert statements()["ReadWebhookKey"] == {
        "Sid": "ReadWebhookKey", "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue"], "Resource": secret}  # fmt: skip


def test_no_webhook_reads_no_secret(stage):
    stage({"UPLOAD_WEBHOOK_SECRET": "/uploads/webhook-key"})  # a key but no URL: no webhook
    assert sorted(statements()) == ["FindUploads", "JudgeUploads", "PublishVerdicts",
                                    "QuarantineRejected", "WriteOwnLogs"]  # fmt: skip


@pytest.mark.parametrize(
    ("bus", "resource"),
    [("uploads", "arn:aws:events:*:*:event-bus/uploads"),
     ("arn:aws:events:eu-west-1:210987654321:event-bus/uploads",
      "arn:aws:events:eu-west-1:210987654321:event-bus/uploads")],
)  # fmt: skip
def test_verdicts_go_to_the_named_bus_in_any_region_or_to_the_exact_arn(stage, bus, resource):
    stage({"UPLOAD_EVENT_BUS": bus})
    assert statements()["PublishVerdicts"]["Resource"] == resource


def test_uploads_that_carry_tags_may_tag_even_where_nothing_is_verified(stage):
    # x-amz-tagging on a presigned PUT needs s3:PutObjectTagging from the signer.
    stage({"UPLOAD_VERIFY": "false", "UPLOAD_UNCLAIMED_DAYS": "7"})
    (uploads,) = [s for s in api_policy("s")["Statement"] if s["Sid"] == "UploadsUnderPrefix"]
    assert uploads["Action"] == ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                                 "s3:AbortMultipartUpload", "s3:GetObjectTagging",
                                 "s3:PutObjectTagging"]  # fmt: skip
    stage({"UPLOAD_VERIFY": "false"})
    (uploads,) = [s for s in api_policy("s")["Statement"] if s["Sid"] == "UploadsUnderPrefix"]
    assert "s3:PutObjectTagging" not in uploads["Action"]
