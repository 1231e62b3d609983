"""Quotas under `make run` (issue 24): the local stack with UPLOAD_QUOTA_FILES_PER_DAY=2
and UPLOAD_QUOTA_BYTES_PER_DAY=5000 exported, on moto's DynamoDB, the verifier's event
path included. Each test signs in as its own user (`local-cognito`: `chalice local` reads
a token's claims), so each has its own counters."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests

from tests.e2e.test_events import settled
from tests.stack import Stack, local_s3, start_stack, stop_stack
from tests.support import LOCAL_AWS_ENV, png, unsigned_jwt

QUOTAS = {"UPLOAD_QUOTA_FILES_PER_DAY": "2", "UPLOAD_QUOTA_BYTES_PER_DAY": "5000",
          "UPLOAD_VERIFY": "true", "UPLOAD_MAX_BYTES": "4000"}  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    stack = start_stack("local-cognito", env=QUOTAS)
    yield stack
    stop_stack(stack)


def as_user(name: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = unsigned_jwt({"sub": name, "cognito:username": name})
    return session


def put_url(stack: Stack, user: requests.Session, **params: Any) -> requests.Response:
    return user.get(f"{stack.api}/put-url", params=params, timeout=10)


def quota(stack: Stack, user: requests.Session) -> dict[str, Any]:
    answer = user.get(f"{stack.api}/quota", timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def used(stack: Stack, user: requests.Session) -> dict[str, int]:
    figures: dict[str, int] = quota(stack, user)["used"]
    return figures


def test_the_third_url_of_the_day_is_a_429_naming_the_limit_with_retry_after(stack):
    alice = as_user("alice-third")
    assert [put_url(stack, alice, size=10).status_code for _ in range(2)] == [200, 200]
    third = put_url(stack, alice, size=10)
    body = third.json()
    resets = body["resets_at"]
    assert (third.status_code, body) == (429, {
        "Code": "QuotaExceeded",
        "Message": f"quota files_per_day reached: 2 of 2 uploads today; it resets at {resets}",
        "limit": "files_per_day", "allowed": 2, "used": 2, "resets_at": resets})  # fmt: skip
    seconds_left = time.mktime(time.strptime(resets, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(
        time.gmtime()
    )
    assert abs(int(third.headers["Retry-After"]) - seconds_left) <= 5
    # GET /quota: 2 of 2, and the third URL counted nothing.
    answer = quota(stack, alice)
    assert answer["limits"] == {"files_per_day": 2, "bytes_per_day": 5000, "stored_bytes": None}
    assert answer["used"] == {"files_today": 2, "bytes_today": 20, "stored_bytes": 20,
                              "uploads_in_flight": 2}  # fmt: skip


def test_a_file_beyond_the_days_bytes_is_a_429(stack):
    bob = as_user("bob-bytes")
    assert put_url(stack, bob, size=3000).status_code == 200
    over = put_url(stack, bob, size=3000)
    assert (over.status_code, over.json()["limit"], over.json()["used"]) == (
        429, "bytes_per_day", 3000)  # fmt: skip
    # One byte over the day's 5000 is refused; exactly what is left is not.
    assert put_url(stack, bob, size=2001).status_code == 429
    assert put_url(stack, bob, size=2000).status_code == 200
    assert used(stack, bob)["bytes_today"] == 5000


def test_twenty_parallel_requests_never_get_more_than_the_limit(stack):
    carol = as_user("carol-parallel")
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: put_url(stack, carol, size=1).status_code, range(20)))
    assert sorted(codes) == [200] * 2 + [429] * 18
    # At the limit, 20 more in parallel get no URL at all.
    with ThreadPoolExecutor(20) as pool:
        more = list(pool.map(lambda _: put_url(stack, carol, size=1).status_code, range(20)))
    assert more == [429] * 20
    assert used(stack, carol) == {"files_today": 2, "bytes_today": 2, "stored_bytes": 2,
                                  "uploads_in_flight": 2}  # fmt: skip


def test_a_verified_upload_counts_its_stored_size_and_a_rejected_one_gives_its_bytes_back(stack):
    dave = as_user("dave-verdicts")
    good, bad = png(8), b"<html><script>alert(1)</script></html>"
    tickets = []
    for data in (good, bad):
        answer = put_url(stack, dave, size=len(data), content_type="image/png")
        assert answer.status_code == 200, answer.text
        ticket = answer.json()
        stored = requests.put(ticket["PUT_URL"], data=data, headers=ticket["headers"], timeout=10)
        assert stored.status_code == 200
        tickets.append(ticket)
    verdicts = [settled(stack, t["UUID"], http=dave)["status"] for t in tickets]
    assert verdicts == ["verified", "rejected"]
    # The rejected upload's bytes come back (today's and stored); its URL still counts.
    assert used(stack, dave) == {"files_today": 2, "bytes_today": len(good),
                                 "stored_bytes": len(good), "uploads_in_flight": 0}  # fmt: skip


def test_an_aborted_multipart_upload_gives_its_reservation_back(stack):
    erin = as_user("erin-abort")
    created = erin.post(f"{stack.api}/s3/multipart", json={"filename": "a.bin",
                        "type": "application/octet-stream"}, timeout=10)  # fmt: skip
    assert created.status_code == 200, created.text
    # A multipart upload reserves the most its completion accepts: UPLOAD_MAX_BYTES.
    assert used(stack, erin) == {"files_today": 1, "bytes_today": 4000, "stored_bytes": 4000,
                                 "uploads_in_flight": 1}  # fmt: skip
    upload = created.json()
    aborted = erin.delete(f"{stack.api}/s3/multipart/{upload['uploadId']}",
                          params={"key": upload["key"]}, timeout=10)  # fmt: skip
    assert aborted.status_code == 200, aborted.text
    assert used(stack, erin) == {"files_today": 1, "bytes_today": 0, "stored_bytes": 0,
                                 "uploads_in_flight": 0}  # fmt: skip


def test_each_user_sees_only_their_own_quota(stack):
    frank, grace = as_user("frank-own"), as_user("grace-own")
    assert put_url(stack, frank, size=7).status_code == 200
    assert used(stack, frank)["bytes_today"] == 7
    assert used(stack, grace) == {"files_today": 0, "bytes_today": 0, "stored_bytes": 0,
                                  "uploads_in_flight": 0}  # fmt: skip
    assert requests.get(f"{stack.api}/quota", timeout=10).status_code == 401


def test_a_deleted_upload_leaves_the_stored_total_through_s3s_event(stack):
    henry = as_user("henry-deleted")
    data = png(4)
    ticket = put_url(stack, henry, size=len(data), content_type="image/png").json()
    requests.put(ticket["PUT_URL"], data=data, headers=ticket["headers"], timeout=10)
    assert settled(stack, ticket["UUID"], http=henry)["status"] == "verified"
    assert used(stack, henry)["stored_bytes"] == len(data)
    # The unclaimed-days lifecycle rule, or an operator: S3's "Object Deleted" event.
    local_s3(stack).delete_object(Bucket="uploads-local", Key=ticket["key"])
    deadline = time.monotonic() + 15
    while used(stack, henry)["stored_bytes"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert used(stack, henry) == {"files_today": 1, "bytes_today": len(data), "stored_bytes": 0,
                                  "uploads_in_flight": 0}  # fmt: skip


def test_quota_takes_no_parameters(stack):
    answer = as_user("ivy-params").get(f"{stack.api}/quota", params={"user": "alice"}, timeout=10)
    assert (answer.status_code, answer.json()["Code"]) == (400, "BadRequestError")


@pytest.fixture(scope="module")
def unverified():
    """A stage with quotas and no verifier: S3's own events settle them."""
    stack = start_stack("local-cognito", env={**QUOTAS, "UPLOAD_VERIFY": "false"})
    yield stack
    stop_stack(stack)


def test_without_verification_s3s_events_count_what_landed_with_its_etag(unverified):
    stack, jane = unverified, as_user("jane-events")
    data = b"x" * 1234
    ticket = put_url(stack, jane, size=4000).json()
    assert used(stack, jane)["stored_bytes"] == 4000  # reserved: the declared size
    stored = requests.put(ticket["PUT_URL"], data=data, headers=ticket["headers"], timeout=10)
    assert stored.status_code == 200
    deadline = time.monotonic() + 15
    while used(stack, jane)["stored_bytes"] == 4000 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert used(stack, jane) == {"files_today": 1, "bytes_today": 1234, "stored_bytes": 1234,
                                 "uploads_in_flight": 0}  # fmt: skip
    # The event's ETag is recorded (moto names it as S3's notifications do; the worker
    # hands it on as AWS's EventBridge does), so that a replacement counts instead.
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.s3, region_name="us-east-1",
                            aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                            )  # fmt: skip
    key = {"pk": {"S": f"u#{ticket['UUID']}"}}
    item = dynamodb.get_item(TableName="presigned-upload-quotas", Key=key)
    assert (item["Item"]["state"], item["Item"]["etag"]) == (
        {"S": "stored"},
        {"S": stored.headers["ETag"].strip('"')},
    )
