"""The verifier's event path, locally: S3 -> EventBridge -> a queue -> the Chalice handler.

    python -m devstack.events --stage local --queue-url URL [--scan-queue-url URL]

:func:`wire` does what the bucket template and `chalice package` do in AWS, on moto's
server: it turns on the bucket's EventBridge notifications and adds a rule with the app's
own pattern (app.py's VERIFY_PATTERN), whose target is an SQS queue (Lambda is not run
by moto). :func:`main` is the worker `make run` starts: it takes each message off the
queue and runs app.py's ``verify_upload`` through Chalice's own local invocation
(``chalice.test.Client.lambda_.invoke``), with the stage's settings, as Lambda would.
With UPLOAD_MALWARE_SCAN, the same worker runs the stand-in for GuardDuty's malware scan
(devstack/scanner.py) on a queue of its own: its results reach the verifier through the
rule, as GuardDuty's do in AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from chalicelib.core.settings import Settings
from chalicelib.verifier import event_pattern
from devstack import scanner
from infra.stages import stage_environment

RULE = "presigned-upload-verify"  # the rule, and its queue


class Queues(NamedTuple):
    """The local event path's queues: the verifier's, and the stand-in scanner's."""

    verify: str
    scan: str | None


def wire(settings: Settings, env: Mapping[str, str]) -> Queues:
    """S3's events of the bucket to EventBridge; a rule with the app's own pattern and its
    queue; with UPLOAD_MALWARE_SCAN, the stand-in scanner's rule (the new uploads, as
    GuardDuty's managed rule) and a queue of its own."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    endpoint = settings.endpoint_url
    sqs = session.client("sqs", endpoint_url=endpoint)
    bus = session.client("events", endpoint_url=endpoint)

    def rule_to_queue(name: str, pattern: dict[str, Any]) -> str:
        queue: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        bus.put_rule(Name=name, EventPattern=json.dumps(pattern))
        bus.put_targets(Rule=name, Targets=[{"Id": "queue",
                                             "Arn": arn["Attributes"]["QueueArn"]}])  # fmt: skip
        return queue

    session.client("s3", endpoint_url=endpoint).put_bucket_notification_configuration(
        Bucket=settings.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    verify = rule_to_queue(RULE, event_pattern(settings.bucket, settings.prefix,
                                               deletions=settings.quotas_on,
                                               scans=settings.malware_scan))  # fmt: skip
    if not settings.malware_scan:
        return Queues(verify, None)
    return Queues(verify, rule_to_queue(scanner.RULE, event_pattern(settings.bucket,
                                                                     settings.prefix)))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.events", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--scan-queue-url", help="the stand-in scanner's queue (wire)")
    args = parser.parse_args(argv)
    # The stage's settings, then what the user exported (as devstack.chalice_local does),
    # before app.py is imported: it reads some of them then.
    overrides = json.loads(os.environ.get("DEVSTACK_SETTINGS") or "{}")
    os.environ.update({**stage_environment(args.stage), **overrides})
    import boto3
    from chalice.test import Client

    import app

    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    bus = boto3.client("events", endpoint_url=endpoint)
    clamd = scanner.clamd_socket()
    with Client(app.app, stage_name=args.stage) as client:
        os.environ.update(overrides)  # the Client applied config.json's values again

        def verify(event: Any) -> str | None:
            if isinstance(event, dict):
                # EventBridge's every event names the account; moto's PutEvents (the
                # stand-in scanner's) leaves it out, and Chalice needs it.
                event.setdefault("account", LOCAL_ACCOUNT)
                aws_shaped(event)
            answer = client.lambda_.invoke("verify_upload", event).payload
            verdict = answer.get("verdict") if isinstance(answer, dict) else None
            if verdict is None:
                return None
            return f"{verdict['key']}: {'verified' if verdict['reason'] is None else 'rejected'}"

        def scan(event: Any) -> str | None:
            found = (event.get("detail") or {}) if isinstance(event, dict) else {}
            bucket = (found.get("bucket") or {}).get("name")
            key = (found.get("object") or {}).get("key")
            if not isinstance(bucket, str) or not isinstance(key, str):
                return None
            time.sleep(scanner.SCAN_SECONDS)
            status = scanner.scan_object(s3, bus, bucket, key, clamd)
            return None if status is None else f"{key}: scanned, {status} (stand-in scanner)"

        while True:
            drain(sqs, args.queue_url, verify)
            if args.scan_queue_url:
                drain(sqs, args.scan_queue_url, scan, "stand-in scanner")


LOCAL_ACCOUNT = "123456789012"  # moto's account


def aws_shaped(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as AWS's EventBridge delivers it: moto's S3 events name the object's ETag
    ``eTag`` (as S3's own notifications do), AWS's EventBridge events ``etag``."""
    found = event.get("detail")
    stored = found.get("object") if isinstance(found, dict) else None
    if isinstance(stored, dict) and "eTag" in stored:
        stored.setdefault("etag", stored.pop("eTag"))
    return event


# Lambda runs an event's handler at most three times (two retries), then drops it.
MAX_RECEIVES = 3


def drain(sqs: Any, queue_url: str, invoke: Callable[[Any], str | None],
          name: str = "verifier") -> None:  # fmt: skip
    """Run ``invoke`` on the messages waiting in the queue (one receive), saying on
    stderr what it returns. A message that is not JSON is dropped at once; one whose run
    fails is left to come back, and dropped after its third, each said on stderr."""
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                              AttributeNames=["ApproximateReceiveCount"])  # fmt: skip
    for message in got.get("Messages", []):
        handle = message["ReceiptHandle"]
        try:
            event = json.loads(message["Body"])
        except ValueError:
            _say("dropped a message that is not JSON (no S3 event)")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
            continue
        try:
            answer = invoke(event)
        except Exception as exc:
            received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            if received >= MAX_RECEIVES:
                _say(f"{name} failed {received} times, dropped the event: {exc!r}")
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
            else:
                _say(f"{name} failed (attempt {received} of {MAX_RECEIVES}): {exc!r}")
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
        if answer is not None:
            _say(answer)


def _say(what: str) -> None:
    print(f"devstack: {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
