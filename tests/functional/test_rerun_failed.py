"""infra/rerun_failed.py: the verifier's failure queue run again, on moto's SQS."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from infra.rerun_failed import HIDE_SECONDS, lambda_invoker, rerun


def record(event: dict[str, Any]) -> str:
    """Lambda's on-failure record of ``event``, as it puts it on the queue."""
    return json.dumps({
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3,
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "QuotaUnavailable"},
    })  # fmt: skip


@pytest.fixture
def queue(s3_endpoint):
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    url = sqs.create_queue(QueueName="presigned-upload-prod-verify-failures")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


def waiting(sqs: Any, url: str) -> tuple[int, int]:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (int(found["ApproximateNumberOfMessages"]),
            int(found["ApproximateNumberOfMessagesNotVisible"]))  # fmt: skip


def test_each_event_runs_again_and_only_a_success_leaves_the_queue(queue):
    sqs, url = queue
    good = {"detail-type": "Object Created", "detail": {"object": {"key": "put_folder/a"}}}
    bad = {"detail-type": "Object Created", "detail": {"object": {"key": "put_folder/b"}}}
    for event in (good, bad):
        sqs.send_message(QueueUrl=url, MessageBody=record(event))
    sqs.send_message(QueueUrl=url, MessageBody="not a record")
    runs: list[dict[str, Any]] = []

    def invoke(payload: bytes) -> str | None:
        event = json.loads(payload)
        runs.append(event)
        return None if event == good else '{"errorType": "QuotaUnavailable"}'

    said: list[str] = []
    assert rerun(sqs, url, invoke, said.append) == (1, 2)
    assert sorted(runs, key=json.dumps) == sorted([good, bad], key=json.dumps)
    assert sorted(line.split(": ", 1)[1] for line in said) == [
        'failed again, left on the queue: {"errorType": "QuotaUnavailable"}',
        "not Lambda's failure record; left on the queue",
    ]
    # The two left are hidden for this pass (HIDE_SECONDS), then come back; the run is gone.
    assert waiting(sqs, url) == (0, 2)
    assert HIDE_SECONDS == 900


def payload(text: str) -> StreamingBody:
    return StreamingBody(io.BytesIO(text.encode()), len(text.encode()))


def test_a_run_that_raised_is_an_error_though_lambda_answers_200():
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")  # fmt: skip
    invoke = lambda_invoker(client, "presigned-upload-prod-verify_upload")
    expected = {"FunctionName": "presigned-upload-prod-verify_upload", "Payload": b"{}"}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": payload("{}")}, expected)
        raised = payload('{"errorMessage": "boom"}')
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": raised}, expected)  # fmt: skip
        assert invoke(b"{}") is None
        assert invoke(b"{}") == '{"errorMessage": "boom"}'
