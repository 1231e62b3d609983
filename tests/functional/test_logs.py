"""The request log: one JSON line per request, with what an operator needs, and no
secret: no signed URL, signature, POST policy, credential or Authorization header."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from chalice.test import Client

from tests.functional.conftest import app_module
from tests.support import LOCAL_AWS_ENV, load_app, unsigned_jwt

SECRET_TOKEN = "IQoJb3JpZ2luX2VjEN7//////SESSIONTOKENSECRET=="


def lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_each_request_is_one_json_line_with_route_status_latency_and_upload(api, capsys):
    capsys.readouterr()
    body = api.http.get("/put-url?filename=a.png").json_body
    missing = api.http.get("/uploads/not-a-uuid")
    (put, bad) = lines(capsys.readouterr().out)
    assert put == {
        "level": "INFO",
        "request_id": put["request_id"],
        "method": "GET",
        "route": "/put-url",
        "status": 200,
        "latency_ms": put["latency_ms"],
        "principal": None,
        "UUID": body["UUID"],
        "key": body["key"],
    }
    assert isinstance(put["latency_ms"], float)
    assert missing.status_code == 400
    assert {k: bad[k] for k in ("level", "route", "status", "UUID", "error")} == {
        "level": "WARNING",
        "route": "/uploads/{upload_id}",
        "status": 400,
        "UUID": "not-a-uuid",
        "error": "BadRequestError",
    }


def test_log_level_warning_keeps_only_failures(api, capsys, monkeypatch):
    monkeypatch.setattr(app_module.REQUEST_LOG, "_level", 30)
    capsys.readouterr()
    api.http.get("/put-url")
    api.http.get("/put-url?size=x")
    assert [line["status"] for line in lines(capsys.readouterr().out)] == [400]


def test_a_bad_log_level_names_the_setting():
    from chalicelib.errors import ConfigError
    from chalicelib.logs import log_level

    with pytest.raises(ConfigError, match=r"^LOG_LEVEL='LOUD' is invalid; allowed: DEBUG, INFO"):
        log_level({"LOG_LEVEL": "LOUD"})


COGNITO_APP = load_app("local-cognito")


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer:UserWarning")
def test_no_secret_ever_reaches_the_log(s3, capsys, monkeypatch):
    # GIVEN credentials with a session token, a caller with a token, and every route
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRET_TOKEN)
    COGNITO_APP.services.cache_clear()
    token = unsigned_jwt({"sub": "user-1", "cognito:username": "u"})
    auth = {"Authorization": token}
    capsys.readouterr()
    with Client(COGNITO_APP.app, stage_name="local-cognito") as client:
        put = client.http.get("/put-url?" + urlencode({"filename": "x.pdf"}), headers=auth)
        post = client.http.get("/post-url?content_type=text/plain", headers=auth)
        requests.put(put.json_body["PUT_URL"], data=b"x", headers=put.json_body["headers"],
                     timeout=10)  # fmt: skip
        download = client.http.get(f"/uploads/{put.json_body['UUID']}/download-url", headers=auth)
        json_auth = {**auth, "Content-Type": "application/json"}
        created = client.http.post(
            "/s3/multipart", body=b'{"filename": "v.mp4"}', headers=json_auth
        )
        key, upload_id = created.json_body["key"], created.json_body["uploadId"]
        part = client.http.get(f"/s3/multipart/{upload_id}/1?key={key}", headers=auth)
        # An access token: the local gateway passes it on without claims, so it is a 401.
        access = unsigned_jwt({"sub": "user-1", "token_use": "access"})
        refused = client.http.get("/put-url", headers={"Authorization": access})
    out = capsys.readouterr().out
    COGNITO_APP.services.cache_clear()
    records = lines(out)
    # THEN every request logged a line, with the caller, and none of these strings appear
    assert [r["route"] for r in records] == [
        "/put-url", "/post-url", "/uploads/{upload_id}/download-url", "/s3/multipart",
        "/s3/multipart/{upload_id}/{part_number}", "/put-url",
    ]  # fmt: skip
    assert {r["principal"] for r in records[:5]} == {"user-1"}
    assert (refused.status_code, records[5]["status"], records[5]["principal"]) == (401, 401, None)
    secrets = [
        SECRET_TOKEN, LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"] + "/", token, access,
        put.json_body["PUT_URL"], download.json_body["url"], part.json_body["url"],
        post.json_body["fields"]["policy"], post.json_body["fields"]["x-amz-signature"],
    ]  # fmt: skip
    for secret in secrets:
        assert secret not in out
    for pattern in (r"X-Amz-Signature", r"X-Amz-Credential", r"X-Amz-Security-Token",
                    r"https?://", r"Authorization", r"policy"):  # fmt: skip
        assert not re.search(pattern, out, re.IGNORECASE), pattern


def test_a_huge_path_id_is_logged_cut_short(api, capsys):
    capsys.readouterr()
    response = api.http.get("/uploads/" + "x" * 5000)
    assert response.status_code == 400
    (line,) = capsys.readouterr().out.splitlines()
    assert (json.loads(line)["UUID"], len(line) < 1024) == ("x" * 64, True)
