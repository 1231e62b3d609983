"""The local launcher's pure parts: the bucket's CORS rules and the children's environment."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.core.auth import AuthConfig
from chalicelib.core.settings import Settings
from devstack.__main__ import child_environment, ready_message
from devstack.cors import cors_rules
from infra.stages import stage_environment


def test_local_bucket_gets_the_templates_cors_rules_with_the_origin_filled_in():
    assert cors_rules({"AllowedOrigin": "http://localhost:3000"}) == [
        {
            "ID": "BrowserUploads",
            "AllowedOrigins": ["http://localhost:3000"],
            "AllowedMethods": ["PUT", "POST", "GET", "DELETE"],
            "AllowedHeaders": [
                "Content-Type",
                "Content-MD5",
                "x-amz-checksum-sha256",
                "Content-Disposition",
                "If-None-Match",
                "x-amz-meta-filename",
                "x-amz-mp-object-size",
                "x-amz-tagging",
            ],
            "ExposeHeaders": ["ETag", "x-amz-checksum-sha256"],
            "MaxAgeSeconds": 3000,
        }
    ]


def test_cors_origin_must_be_given_the_template_has_no_default():
    message = r"^the bucket template's parameter AllowedOrigin has no default$"
    with pytest.raises(ValueError, match=message):
        cors_rules({})


def test_stage_environment_applies_stage_values_over_the_top_level():
    assert stage_environment("prod") == {
        "UPLOAD_PREFIX": "put_folder/",
        "UPLOAD_URL_EXPIRES": "120",
        "LOG_LEVEL": "INFO",
        "UPLOAD_BUCKET": "example-uploads-prod",
        "CORS_ALLOW_ORIGIN": "https://app.example.com",
        "UPLOAD_ALLOWED_TYPES": "image/*,application/pdf",
        "UPLOAD_REQUIRE_KNOWN_TYPES": "true",
        "UPLOAD_MAX_BYTES": "10485760",
        "UPLOAD_REQUIRE_CHECKSUM": "true",
        "UPLOAD_NO_OVERWRITE": "true",
        "AUTH_MODE": "cognito",
        "COGNITO_USER_POOL_ARNS": (
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_EXAMPLE"
        ),
        "UPLOAD_VERIFY": "true",
        "UPLOAD_UNCLAIMED_DAYS": "7",
        "UPLOAD_QUOTA_FILES_PER_DAY": "500",
        "UPLOAD_QUOTA_BYTES_PER_DAY": "1073741824",
        "UPLOAD_QUOTA_STORED_BYTES": "10737418240",
        "UPLOAD_MALWARE_SCAN": "true",
    }


SETTINGS = Settings(bucket="uploads-local", region="us-east-1")
PAGE = "http://127.0.0.1:8001/"


def test_ready_message_warns_loudly_when_the_stage_has_no_authorization():
    message = ready_message(
        "http://127.0.0.1:8000", "http://127.0.0.1:4566", SETTINGS, AuthConfig("none"), PAGE
    )
    assert '  T=$(curl -s http://127.0.0.1:8000/put-url); echo "$T"' in message.splitlines()
    assert "TOKEN" not in message
    assert (
        "  upload page: http://127.0.0.1:8001/   API description: http://127.0.0.1:8001/openapi.yaml"
    ) in message.splitlines()
    assert (
        "devstack: WARNING: AUTH_MODE=none: no authorization; anyone who can reach "
        "http://127.0.0.1:8000 gets upload URLs. Never deploy a stage like this."
    ) in message.splitlines()


def test_ready_message_in_cognito_mode_sends_a_token_and_says_none_is_verified():
    auth = AuthConfig(
        "cognito", ("arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_X",)
    )
    message = ready_message("http://127.0.0.1:8000", "http://127.0.0.1:4566", SETTINGS, auth, PAGE)
    lines = message.splitlines()
    # TOKEN is defined before the curl that sends it: the dev sign-in's token for alice.
    token_line = next(n for n, line in enumerate(lines) if line.startswith("  TOKEN='"))
    curl_line = lines.index('  T=$(curl -s -H "Authorization: $TOKEN" http://127.0.0.1:8000/'
                            'put-url); echo "$T"')  # fmt: skip
    assert token_line < curl_line
    token = lines[token_line].split("'")[1]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims == {"sub": "local-alice", "cognito:username": "alice"}
    assert "WARNING" not in message
    assert (
        "devstack: AUTH_MODE=cognito, but `chalice local` verifies no token: it reads the "
        "claims of any JWT in the Authorization header (see docs/authorization.md)."
    ) in message.splitlines()


def test_ready_message_on_a_stage_with_rules_offers_the_cli_which_sends_what_they_ask():
    auth = AuthConfig(
        "cognito", ("arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_X",)
    )
    rules = Settings(bucket="uploads-local", region="us-east-1", allowed_types=("image/*",),
                     require_checksum=True)  # fmt: skip
    message = ready_message("http://127.0.0.1:8000", "http://127.0.0.1:4566", rules, auth, PAGE)
    assert (
        '  .venv/bin/presigned-upload upload photo.png --api http://127.0.0.1:8000 --token "$TOKEN"'
    ) in message.splitlines()
    assert "curl" not in message
    open_rules = ready_message("http://127.0.0.1:8000", "http://127.0.0.1:4566", rules,
                               AuthConfig("none"), PAGE)  # fmt: skip
    assert "  .venv/bin/presigned-upload upload photo.png --api http://127.0.0.1:8000" in (
        open_rules.splitlines())  # fmt: skip
    assert "TOKEN" not in open_rules


def test_children_get_local_credentials_and_never_a_real_profile():
    env = child_environment(
        {
            "PATH": "/bin",
            "AWS_PROFILE": "work",
            "AWS_SESSION_TOKEN": "real",
            "AWS_REGION": "eu-west-1",
        },
        "http://127.0.0.1:4566",
    )
    assert env == {
        "PATH": "/bin",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_EVENTBRIDGE": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566",
        "PYTHONUNBUFFERED": "1",
        "LOG_FORMAT": "text",
    }


def test_local_prod_has_prods_upload_rules_and_authorizer():
    rules = ("UPLOAD_ALLOWED_TYPES", "UPLOAD_MAX_BYTES", "UPLOAD_REQUIRE_CHECKSUM",
             "UPLOAD_NO_OVERWRITE", "AUTH_MODE")  # fmt: skip
    prod, local = stage_environment("prod"), stage_environment("local-prod")
    assert {name: local.get(name) for name in rules} == {name: prod[name] for name in rules}
