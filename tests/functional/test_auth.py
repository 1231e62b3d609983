"""Authorization through the app: each caller gets its own key space, and no caller, none.

Cognito mode runs through Chalice's local gateway, which (like `chalice local`) reads the
claims of the JWT in the Authorization header without verifying it, as API Gateway would
after verifying it. IAM mode is driven with the Lambda event API Gateway sends after
checking a SigV4 signature: the handler is called with that event directly.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from chalice.test import Client

from tests.functional.conftest import BUCKET
from tests.support import load_app, unsigned_jwt

ALICE = "7d1c9a4e-5b2f-4c8e-9a1d-3e6f0b2c4d5a"
BOB = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
COGNITO_APP = load_app("local-cognito")
IAM_APP = load_app("dev")
# The local gateway warns on every request that it does not verify Cognito tokens.
pytestmark = pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer:UserWarning")
ROUTES = [
    "/put-url",
    "/post-url",
    "/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b",
    "/uploads/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b/download-url",
    "/s3/params",
    "/s3/multipart/abc",
    "/s3/multipart/abc/1",
    "/s3/multipart/abc/batch",
]


def id_token(sub, username="alice"):
    return unsigned_jwt({"sub": sub, "cognito:username": username, "token_use": "id"})


@pytest.fixture
def cognito(s3):
    COGNITO_APP.services.cache_clear()
    with Client(COGNITO_APP.app, stage_name="local-cognito") as client:
        yield client
    COGNITO_APP.services.cache_clear()


def get(client, path, token=None):
    headers = {"Authorization": token} if token else {}
    return client.http.get(path, headers=headers)


def upload(client, token, data=b"%PDF-1.7 mine", filename="mine.pdf"):
    ticket = get(client, f"/put-url?filename={filename}", token).json_body
    put = requests.put(ticket["PUT_URL"], data=data, headers=ticket["headers"], timeout=10)
    assert put.status_code == 200
    return ticket


def test_cognito_caller_gets_keys_under_its_own_sub(cognito):
    ticket = get(cognito, "/put-url?filename=a.png", id_token(ALICE)).json_body
    assert re.fullmatch(rf"put_folder/{ALICE}/{UUID}\.png", ticket["key"])
    assert ticket["key"] == f"put_folder/{ALICE}/{ticket['UUID']}.png"
    assert ticket["PUT_URL"].split("?")[0].endswith(f"/{BUCKET}/{ticket['key']}")


def test_post_policy_pins_the_callers_key(cognito):
    body = get(cognito, "/post-url", id_token(ALICE)).json_body
    assert body["fields"]["key"] == f"put_folder/{ALICE}/{body['UUID']}"


def test_two_callers_cannot_read_each_others_status_or_downloads(cognito, s3):
    # GIVEN alice's stored upload
    ticket = upload(cognito, id_token(ALICE))
    # WHEN bob asks about it by its UUID
    bob_status = get(cognito, f"/uploads/{ticket['UUID']}", id_token(BOB, "bob"))
    bob_download = get(cognito, f"/uploads/{ticket['UUID']}/download-url", id_token(BOB, "bob"))
    # THEN he learns nothing, not even that it exists
    assert (bob_status.status_code, bob_status.json_body) == (
        200,
        {"UUID": ticket["UUID"], "status": "pending"},
    )
    assert bob_download.status_code == 404
    assert bob_download.json_body["Code"] == "NotFoundError"
    # while alice sees and downloads it
    status = get(cognito, f"/uploads/{ticket['UUID']}", id_token(ALICE)).json_body
    assert (status["status"], status["key"]) == ("uploaded", ticket["key"])
    url = get(cognito, f"/uploads/{ticket['UUID']}/download-url", id_token(ALICE)).json_body["url"]
    assert requests.get(url, timeout=10).content == b"%PDF-1.7 mine"
    # and the two never share a key prefix
    bobs = get(cognito, "/put-url", id_token(BOB, "bob")).json_body["key"]
    assert bobs.startswith(f"put_folder/{BOB}/")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [ticket["key"]]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "token",
    [
        None,
        # An access token has no cognito:username: the local gateway passes it on
        # without claims, as a gateway wired to the wrong authorizer type might.
        unsigned_jwt({"sub": ALICE, "token_use": "access", "scope": "aws.cognito.signin"}),
    ],
)
def test_no_verified_caller_is_a_401_with_cors_never_the_shared_prefix(cognito, route, token):
    with pytest.warns(UserWarning, match="local mode"):
        response = get(cognito, f"{route}?content_type=nonsense", token)
    assert (response.status_code, response.json_body) == (
        401,
        {
            "Code": "UnauthorizedError",
            "Message": "no authenticated caller (AUTH_MODE=cognito); "
            "send a Cognito user pool token in the Authorization header",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/s3/multipart"), ("POST", "/s3/multipart/abc/complete"), ("POST", "/s3/sign"),
     ("DELETE", "/s3/multipart/abc")],
)  # fmt: skip
def test_multipart_writes_without_a_caller_are_a_401(cognito, method, path):
    with pytest.warns(UserWarning, match="local mode"):
        response = cognito.http.request(
            method,
            path,
            body=b'{"filename": "a.mp4"}',
            headers={"Content-Type": "application/json"},
        )
    assert (response.status_code, response.json_body["Code"]) == (401, "UnauthorizedError")


def test_a_multipart_upload_is_only_reachable_from_its_owners_space(cognito):
    headers = {"Content-Type": "application/json", "Authorization": id_token(ALICE)}
    created = cognito.http.post("/s3/multipart", body=b'{"filename": "a.mp4"}', headers=headers)
    upload = created.json_body
    assert upload["key"] == f"put_folder/{ALICE}/{upload['UUID']}.mp4"
    path = f"/s3/multipart/{upload['uploadId']}?key={upload['key']}"
    assert get(cognito, path, id_token(ALICE)).json_body == []
    for attempt in ("", "/1", "/batch"):
        sep = "&partNumbers=1" if attempt == "/batch" else ""
        bobs = get(
            cognito,
            f"/s3/multipart/{upload['uploadId']}{attempt}?key={upload['key']}{sep}",
            id_token(BOB, "bob"),
        )
        assert (bobs.status_code, bobs.json_body["Message"]) == (
            400,
            f"key {upload['key']!r} is not an upload key issued to you; allowed: the key "
            "returned by POST /s3/multipart",
        )


def gateway_event(path, identity):
    """The proxy event API Gateway sends once its IAM authorizer accepted a signature."""
    resource = re.sub(r"/uploads/[^/]+", "/uploads/{upload_id}", path)
    params = {"upload_id": path.split("/")[2]} if resource != path else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/api{path}",
            "stage": "api",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.9", "accountId": "123456789012", **identity},
        },
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.fixture
def iam(s3, monkeypatch):
    """The IAM-authorized `dev` app, pointed at the local bucket."""
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)
    IAM_APP.services.cache_clear()
    yield lambda path, **identity: invoke(IAM_APP.app, gateway_event(path, identity))
    IAM_APP.services.cache_clear()


def invoke(handler, event):
    response = handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def test_iam_caller_with_odd_characters_gets_a_safe_key(iam):
    status, body = iam("/put-url", caller="AROAEXAMPLE:alice@example.com")
    assert status == 200
    assert body["key"] == f"put_folder/AROAEXAMPLE_3Aalice_40example_2Ecom/{body['UUID']}"


def test_iam_callers_from_an_identity_pool_are_told_apart(iam):
    shared_role = "AROAPOOLROLE:CognitoIdentityCredentials"
    _, one = iam("/put-url", caller=shared_role, cognitoIdentityId="us-east-1:aaaa-1")
    _, two = iam("/put-url", caller=shared_role, cognitoIdentityId="us-east-1:bbbb-2")
    assert one["key"].startswith("put_folder/us-east-1_3Aaaaa-1/")
    assert two["key"].startswith("put_folder/us-east-1_3Abbbb-2/")


def test_iam_status_is_scoped_to_the_caller(iam, s3):
    _, ticket = iam("/put-url", caller="AIDAALICE")
    requests.put(ticket["PUT_URL"], data=b"x", timeout=10)
    assert iam(f"/uploads/{ticket['UUID']}", caller="AIDAALICE")[1]["status"] == "uploaded"
    assert iam(f"/uploads/{ticket['UUID']}", caller="AIDABOB")[1]["status"] == "pending"
    assert iam(f"/uploads/{ticket['UUID']}/download-url", caller="AIDABOB")[0] == 404


def test_iam_request_without_a_caller_is_a_401(iam):
    assert iam("/put-url") == (
        401,
        {
            "Code": "UnauthorizedError",
            "Message": "no authenticated caller (AUTH_MODE=iam); "
            "sign the request with AWS Signature Version 4 (IAM credentials)",
        },
    )
