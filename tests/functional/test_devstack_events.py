"""`make run`'s event worker (devstack/events.py) on moto's SQS: what it does with a
message it cannot use, so that none comes back for ever."""

from __future__ import annotations

import json

import boto3
import pytest

from devstack.events import MAX_RECEIVES, drain


@pytest.fixture
def queue(s3, s3_endpoint):
    """(client, url) of an empty queue whose messages come back at once when not deleted."""
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName="verify", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    return sqs, url


def left(sqs, url) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])  # fmt: skip


def test_a_message_that_is_not_json_is_dropped_at_once(queue, capsys):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    calls: list[object] = []
    drain(sqs, url, lambda event: calls.append(event))
    assert (calls, left(sqs, url)) == ([], 0)
    assert capsys.readouterr().err == "devstack: dropped a message that is not JSON (no S3 event)\n"


def test_a_failing_run_comes_back_then_is_dropped_after_the_third(queue, capsys):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {}}))
    runs: list[object] = []

    def fail(event: object) -> str | None:
        runs.append(event)
        raise RuntimeError("S3 said no")

    for _ in range(MAX_RECEIVES + 2):
        drain(sqs, url, fail)
    assert (len(runs), left(sqs, url)) == (MAX_RECEIVES, 0)
    assert capsys.readouterr().err.splitlines() == [
        "devstack: verifier failed (attempt 1 of 3): RuntimeError('S3 said no')",
        "devstack: verifier failed (attempt 2 of 3): RuntimeError('S3 said no')",
        "devstack: verifier failed 3 times, dropped the event: RuntimeError('S3 said no')",
    ]


def test_a_verdict_is_said_and_its_message_deleted(queue, capsys):
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail": {}}))
    drain(sqs, url, lambda event: "put_folder/a: verified")
    assert left(sqs, url) == 0
    assert capsys.readouterr().err == "devstack: put_folder/a: verified\n"
