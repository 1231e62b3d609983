"""The request log: one JSON line per request, with what an operator needs, and no
secret: no signed URL, signature, POST policy, credential or Authorization header."""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from chalice.test import Client

from tests.functional.conftest import app_module
from tests.support import LOCAL_AWS_ENV, load_app, unsigned_jwt

SECRET_TOKEN = "IQoJb3JpZ2luX2VjEN7//////SESSIONTOKENSECRET=="


@pytest.fixture(autouse=True)
def warm(monkeypatch):
    """A warm container: whichever test runs first, no line here is its first."""
    monkeypatch.setattr(app_module.REQUEST_LOG, "_cold", False)


def lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def emf(line: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """The metrics CloudWatch reads from an EMF line, as {(name, dimensions): value},
    checking the rules CloudWatch applies: every metric and dimension is a member of the
    line, dimension values are strings, and the timestamp is epoch milliseconds."""
    meta = line["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
    found = {}
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "presigned-upload"
        for dimensions in directive["Dimensions"]:
            assert all(isinstance(line[d], str) for d in dimensions)
            for metric in directive["Metrics"]:
                values = tuple((d, line[d]) for d in dimensions)
                found[f"{metric['Name']} ({metric['Unit']})", values] = line[metric["Name"]]
    return found


SERVICE = ("service", "presigned-upload")


def request_metrics(route: str, status_class: str, latency: float) -> dict[Any, Any]:
    dims = (SERVICE, ("route", route), ("status_class", status_class))
    return {("requests (Count)", dims): 1, ("latency_ms (Milliseconds)", dims): latency}


def test_each_request_is_one_json_line_with_route_status_latency_and_upload(api, capsys):
    capsys.readouterr()
    body = api.http.get("/put-url?filename=a.png").json_body
    missing = api.http.get("/uploads/not-a-uuid")
    (put, bad) = lines(capsys.readouterr().out)
    assert {k: v for k, v in put.items() if k != "_aws"} == {
        "level": "INFO",
        "request_id": put["request_id"],
        "lambda_request_id": put["lambda_request_id"],
        "method": "GET",
        "route": "/put-url",
        "status": 200,
        "latency_ms": put["latency_ms"],
        "principal": None,
        "UUID": body["UUID"],
        "key": body["key"],
        "cold_start": False,
        "service": "presigned-upload",
        "status_class": "2xx",
        "requests": 1,
        "urls_issued": 1,
    }
    assert isinstance(put["latency_ms"], float)
    # Lambda's own request id (Chalice's local context makes one per call), beside
    # API Gateway's: the two lines of one request can be joined.
    assert re.fullmatch(r"[0-9a-f-]{36}", put["lambda_request_id"])
    assert put["lambda_request_id"] != bad["lambda_request_id"]
    assert missing.status_code == 400
    assert {k: bad[k] for k in ("level", "route", "status", "UUID", "error")} == {
        "level": "WARNING",
        "route": "/uploads/{upload_id}",
        "status": 400,
        "UUID": "not-a-uuid",
        "error": "BadRequestError",
    }


def test_each_line_carries_its_metrics_in_cloudwatch_embedded_metric_format(api, capsys):
    capsys.readouterr()
    api.http.get("/put-url?filename=a.png&size=2048")
    api.http.get("/uploads/not-a-uuid")
    created = api.http.post("/s3/multipart", body=b'{"filename": "v.mp4", "size": 7000000}',
                            headers={"Content-Type": "application/json"}).json_body  # fmt: skip
    ref = f"key={created['key']}&partNumbers=1,2,3"
    api.http.get(f"/s3/multipart/{created['uploadId']}/batch?{ref}")
    put, bad, create, batch = lines(capsys.readouterr().out)
    service = (SERVICE,)
    assert emf(put) == {
        **request_metrics("/put-url", "2xx", put["latency_ms"]),
        ("urls_issued (Count)", service): 1,
        ("bytes_declared (Bytes)", service): 2048,
    }
    assert emf(bad) == {
        **request_metrics("/uploads/{upload_id}", "4xx", bad["latency_ms"]),
        ("errors (Count)", (SERVICE, ("error", "BadRequestError"))): 1,
    }
    assert emf(create) == {
        **request_metrics("/s3/multipart", "2xx", create["latency_ms"]),
        ("bytes_declared (Bytes)", service): 7000000,
    }
    assert emf(batch) == {
        **request_metrics("/s3/multipart/{upload_id}/batch", "2xx", batch["latency_ms"]),
        ("urls_issued (Count)", service): 3,
    }


def test_a_completed_multipart_upload_is_counted(api, capsys):
    json_headers = {"Content-Type": "application/json"}
    created = api.http.post("/s3/multipart", body=b"{}", headers=json_headers).json_body
    ref = f"key={created['key']}"
    part = api.http.get(f"/s3/multipart/{created['uploadId']}/1?{ref}").json_body
    etag = requests.put(part["url"], data=b"x" * 10, timeout=10).headers["ETag"]
    capsys.readouterr()
    body = json.dumps({"parts": [{"PartNumber": 1, "ETag": etag}]}).encode()
    done = api.http.post(f"/s3/multipart/{created['uploadId']}/complete?{ref}", body=body,
                         headers=json_headers)  # fmt: skip
    assert done.status_code == 200
    (line,) = lines(capsys.readouterr().out)
    assert emf(line)["multipart_completions (Count)", (SERVICE,)] == 1


def test_only_a_containers_first_line_is_a_cold_start():
    from chalicelib.core import metrics
    from chalicelib.core.logs import RequestLog

    stream = io.StringIO()
    log = RequestLog(20, "presigned-upload-prod", stream)
    for _ in range(2):
        log.write({"route": "/put-url", "status": 200, "latency_ms": 1.5}, metrics.begin())
    first, second = map(json.loads, stream.getvalue().splitlines())
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert emf(first)["cold_starts (Count)", (("service", "presigned-upload-prod"),)] == 1
    assert "cold_starts" not in second
    assert [d["Dimensions"] for d in second["_aws"]["CloudWatchMetrics"]] == [
        [["service", "route", "status_class"]]
    ]


def test_log_level_warning_keeps_only_failures_but_every_request_is_measured(
    api, capsys, monkeypatch
):
    monkeypatch.setattr(app_module.REQUEST_LOG, "_level", 30)
    capsys.readouterr()
    api.http.get("/put-url?size=10")
    api.http.get("/put-url?size=x")
    ok, failed = lines(capsys.readouterr().out)
    assert failed["status"] == 400
    # The successful request's line is cut to its metrics: no key, UUID or principal.
    assert {k: v for k, v in ok.items() if k != "_aws"} == {
        "service": "presigned-upload",
        "route": "/put-url",
        "status_class": "2xx",
        "requests": 1,
        "urls_issued": 1,
        "bytes_declared": 10,
        "latency_ms": ok["latency_ms"],
        "cold_start": False,
    }
    assert emf(ok)["urls_issued (Count)", (SERVICE,)] == 1


def test_a_bad_log_level_names_the_setting():
    from chalicelib.core.errors import ConfigError
    from chalicelib.core.logs import log_level

    with pytest.raises(ConfigError, match=r"^LOG_LEVEL='LOUD' is invalid; allowed: DEBUG, INFO"):
        log_level({"LOG_LEVEL": "LOUD"})


def test_a_bad_log_format_names_the_setting():
    from chalicelib.core.errors import ConfigError
    from chalicelib.core.logs import log_format

    with pytest.raises(ConfigError, match=r"^LOG_FORMAT='xml' is invalid; allowed: emf, text$"):
        log_format({"LOG_FORMAT": "xml"})


def test_the_text_format_is_one_short_line_with_no_metrics():
    import io

    from chalicelib.core.logs import LEVELS, RequestLog

    stream = io.StringIO()
    log = RequestLog(LEVELS["INFO"], "svc", stream, text=True)
    ok = {"method": "GET", "route": "/put-url", "status": 200, "latency_ms": 0.412,
          "principal": None, "UUID": "u-1", "key": "put_folder/u-1"}  # fmt: skip
    log.write(ok, {"urls_issued": 1})
    missing = {"method": "GET", "route": None, "status": 404, "latency_ms": 0.1,
               "principal": "alice", "UUID": None, "key": None,
               "error": "NotFoundError"}  # fmt: skip
    log.write(missing, {})
    quiet = RequestLog(LEVELS["WARNING"], "svc", stream, text=True)
    quiet.write({"method": "GET", "route": "/put-url", "status": 200, "latency_ms": 1.0}, {})
    assert stream.getvalue().splitlines() == [
        "INFO GET /put-url 200 0.412 ms UUID=u-1 key=put_folder/u-1",
        "WARNING GET unknown 404 0.1 ms principal=alice error=NotFoundError",
    ]


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
