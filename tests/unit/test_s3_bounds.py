"""Every S3-calling route answers within API Gateway's 29 s: each call's worst case follows
from the client's configured timeouts and attempts, and each route reserves it from a
28 s Deadline before the call (tests/functional/test_completion.py shows a route stop)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core import s3
from chalicelib.core.errors import StorageUnavailable
from chalicelib.core.settings import Settings

SETTINGS = Settings(bucket="my-uploads", region="eu-west-1")


def test_the_clients_are_configured_as_the_worst_cases_assume():
    fast: Any = s3.client_config(SETTINGS)
    slow: Any = s3.client_config(SETTINGS, read_timeout=s3.SLOW_READ_TIMEOUT)
    assert (fast.connect_timeout, fast.read_timeout, fast.retries) == (
        1,
        3,
        {"total_max_attempts": 2, "mode": "standard"},
    )
    assert (slow.connect_timeout, slow.read_timeout, slow.retries) == (
        1,
        17,
        {"total_max_attempts": 1, "mode": "standard"},
    )


def test_worst_cases_are_attempts_times_timeouts_plus_the_longest_backoffs():
    # two attempts of (1 s connect + 3 s read), and one backoff of at most 1 s plus 5 s of
    # x-amz-retry-after; completion: one attempt of (1 s + 17 s)
    assert (s3.CALL_WORST_CASE, s3.COMPLETE_WORST_CASE) == (14.0, 18.0)
    assert s3.ROUTE_BUDGET < 29


def test_a_deadline_refuses_a_call_that_could_end_past_the_budget():
    now = [100.0]
    deadline = s3.Deadline(28.0, clock=lambda: now[0])
    assert deadline.reserve(28.0, lambda: "client") == "client"  # exactly fits
    now[0] = 101.0
    try:
        deadline.reserve(27.5, lambda: "client")
    except Exception as exc:
        refused = exc
    assert type(refused).__name__ == "StorageUnavailable"


def test_building_the_first_client_counts_against_the_budget():
    # A container's first S3 call imports boto3 and builds the client: about 5 s at a
    # 128 MB function's CPU share. That time is spent before the check, so a call that
    # would then end past the budget is never started.
    now = [0.0]

    def slow_client():
        now[0] += 15.0
        return "client"

    deadline = s3.Deadline(28.0, clock=lambda: now[0])
    with pytest.raises(StorageUnavailable, match="within API Gateway's 29 s"):
        deadline.reserve(s3.CALL_WORST_CASE, slow_client)
    assert now[0] == 15.0


def test_a_client_that_cannot_get_credentials_is_a_503_not_an_unnamed_500():
    from botocore.exceptions import CredentialRetrievalError

    def no_credentials():
        raise CredentialRetrievalError(provider="container-role", error_msg="refused")

    with pytest.raises(StorageUnavailable,
                       match=r"^S3 could not be reached \(CredentialRetrievalError\)"):  # fmt: skip
        s3.Deadline(28.0).reserve(s3.CALL_WORST_CASE, no_credentials)
