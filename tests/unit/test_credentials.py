"""Which credentials sign, how they are renewed, and how their expiry bounds a URL."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.credentials import CredentialSource
from chalicelib.core.errors import SigningUnavailable
from chalicelib.core.s3 import make_s3_client
from chalicelib.core.settings import Settings
from chalicelib.core.signing import BotocoreBackend, SigV4Backend, backend_for
from chalicelib.core.sigv4 import Endpoint, Signer
from tests.support import PROJECT, query

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LAMBDA_ENV = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
              "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2Vj/+=="}  # fmt: skip


class FrozenCredentials:
    def __init__(self, access_key, secret_key, token):
        self.access_key, self.secret_key, self.token = access_key, secret_key, token


class RefreshingChain:
    """Stands in for botocore's RefreshableCredentials: new keys on every refresh."""

    def __init__(self, expiry: datetime | None = None) -> None:
        self.refreshes = 0
        self._expiry_time = expiry

    def get_frozen_credentials(self):
        self.refreshes += 1
        return FrozenCredentials(f"ASIA{self.refreshes}", f"secret{self.refreshes}", "tok")


def backend(source: CredentialSource) -> SigV4Backend:
    endpoint = Endpoint.for_settings("my-uploads", "eu-west-1", None)
    assert endpoint is not None
    return SigV4Backend(Signer(endpoint, "eu-west-1", clock=lambda: NOW), source,
                        clock=lambda: NOW)  # fmt: skip


def test_lambdas_environment_credentials_sign_with_their_session_token():
    chain_calls: list[int] = []
    source = CredentialSource(LAMBDA_ENV, chain=lambda: chain_calls.append(1))
    url = backend(source).put_object("k", {}, 300).url
    params = query(url)
    assert params["X-Amz-Security-Token"] == "IQoJb3JpZ2luX2Vj/+=="
    assert params["X-Amz-Credential"].startswith("ASIAEXAMPLE/20261129/eu-west-1/s3/")
    assert chain_calls == []  # botocore's chain was never needed


def test_legacy_security_token_variable_is_honoured():
    env = {**LAMBDA_ENV, "AWS_SECURITY_TOKEN": "legacy"}
    del env["AWS_SESSION_TOKEN"]
    assert CredentialSource(env).get().token == "legacy"


def test_without_environment_credentials_botocores_chain_is_asked_once_and_refreshed():
    chain = RefreshingChain()
    calls: list[int] = []

    def load():
        calls.append(1)
        return chain

    signer = backend(CredentialSource({}, chain=load))
    first = query(signer.put_object("k", {}, 300).url)["X-Amz-Credential"]
    second = query(signer.put_object("k", {}, 300).url)["X-Amz-Credential"]
    assert (len(calls), chain.refreshes) == (1, 2)
    assert (first[:5], second[:5]) == ("ASIA1", "ASIA2")


def test_no_credentials_anywhere_is_a_clear_503_error():
    with pytest.raises(SigningUnavailable) as exc:
        CredentialSource({}, chain=lambda: None).get()
    assert str(exc.value) == (
        "no AWS credentials found to sign with; set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or configure a profile or role"
    )


@pytest.mark.parametrize(("lifetime", "asked", "granted"), [(90, 300, 90), (600, 300, 300)])
def test_a_url_never_outlives_the_credentials_that_signed_it(lifetime, asked, granted):
    chain = RefreshingChain(expiry=(NOW + timedelta(seconds=lifetime)).replace(tzinfo=None))
    signed = backend(CredentialSource({}, chain=lambda: chain)).put_object("k", {}, asked)
    assert signed.expires_in == granted
    assert query(signed.url)["X-Amz-Expires"] == str(granted)


def test_expired_credentials_refuse_to_sign():
    env = {**LAMBDA_ENV, "AWS_CREDENTIAL_EXPIRATION": "2026-11-29T11:59:59Z"}
    with pytest.raises(SigningUnavailable, match="credentials have expired"):
        backend(CredentialSource(env)).put_object("k", {}, 300)


def test_endpoints_this_signer_does_not_know_fall_back_to_botocore(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    iso = Settings(bucket="my-uploads", region="us-iso-east-1")
    known = Settings(bucket="my-uploads", region="eu-west-1")
    assert isinstance(backend_for(iso, LAMBDA_ENV, lambda: make_s3_client(iso)), BotocoreBackend)
    assert isinstance(backend_for(known, LAMBDA_ENV, lambda: make_s3_client(known)), SigV4Backend)
    fallback = backend_for(iso, LAMBDA_ENV, lambda: make_s3_client(iso))
    url = fallback.put_object("put_folder/k", {"Content-Type": "image/png"}, 60).url
    assert query(url)["X-Amz-SignedHeaders"] == "content-type;host"


COLD = """
import json, os, sys
os.environ.update({"AUTH_MODE": "none", "UPLOAD_BUCKET": "my-uploads",
                   "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID",
                   "AWS_SECRET_ACCESS_KEY": "secret", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"})
import app

def event(path, resource):
    context = {"resourcePath": resource, "httpMethod": "GET", "identity": {}}
    params = {"upload_id": path.rsplit("/", 1)[1]} if "{" in resource else None
    return {"resource": resource, "path": path, "httpMethod": "GET", "headers": {},
            "multiValueHeaders": {}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": params,
            "stageVariables": None, "requestContext": context, "body": None,
            "isBase64Encoded": False}

def sdk():
    return sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore"})

loaded = {"import": sdk()}
loaded["put-url"] = (app.app(event("/put-url", "/put-url"), None)["statusCode"], sdk())
status = app.app(event("/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b", "/uploads/{upload_id}"),
                 None)
loaded["status"] = (status["statusCode"], sdk())
print(json.dumps(loaded))
"""


def test_issuing_a_url_never_loads_the_aws_sdk_but_calling_s3_does():
    done = subprocess.run([sys.executable, "-c", COLD], cwd=PROJECT, capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    # The last line; the ones before are the requests' JSON log lines.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "import": [],
        "put-url": [200, []],
        # The status route calls S3 (unreachable here: 503), so it loads boto3 then.
        "status": [503, ["boto3", "botocore"]],
    }
