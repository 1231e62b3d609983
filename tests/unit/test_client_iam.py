"""The CLI's --iam signing for API Gateway's IAM authorizer (stages with AUTH_MODE=iam)."""

from __future__ import annotations

import re
from datetime import datetime
from unittest import mock

import pytest
import requests
from botocore.credentials import Credentials

from presigned_upload.iam import SigV4Auth, region_of


@pytest.mark.parametrize(
    ("url", "region"),
    [("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api", "eu-west-1"),
     ("https://a1b2c3.execute-api.cn-north-1.amazonaws.com.cn/api", "cn-north-1"),
     ("https://uploads.example.com", None), ("http://127.0.0.1:8000", None)],
)  # fmt: skip
def test_the_region_comes_from_an_api_gateway_url(url, region):
    assert region_of(url) == region


def test_each_request_is_signed_for_execute_api_with_the_session_token():
    auth = SigV4Auth("eu-west-1", Credentials("AKIDEXAMPLE", "secret", "session-token"))
    request = requests.Request(
        "POST",
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api/s3/multipart",
        json={"filename": "a.mp4"},
    ).prepare()
    signed = auth(request)
    header = signed.headers["Authorization"]
    assert re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/execute-api/aws4_request, "
        r"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
        r"Signature=[0-9a-f]{64}",
        header,
    )
    assert signed.headers["X-Amz-Security-Token"] == "session-token"
    assert re.fullmatch(r"\d{8}T\d{6}Z", signed.headers["X-Amz-Date"])


def test_the_body_is_signed():
    auth = SigV4Auth("eu-west-1", Credentials("AKIDEXAMPLE", "secret"))
    url = "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api/s3/multipart"

    def signature(body):
        request = requests.Request("POST", url, json=body).prepare()
        return auth(request).headers["Authorization"].rsplit("Signature=", 1)[1]

    at = datetime(2026, 11, 29, 12, 0, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        assert signature({"filename": "a.mp4"}) == signature({"filename": "a.mp4"})
        assert signature({"filename": "a.mp4"}) != signature({"filename": "b.mp4"})
