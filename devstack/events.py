"""The verifier's event path, locally: S3 -> EventBridge -> a queue -> the Chalice handler.

    python -m devstack.events --stage local --queue-url URL

:func:`wire` does what the bucket template and `chalice package` do in AWS, on moto's
server: it turns on the bucket's EventBridge notifications and adds a rule with the app's
own pattern (app.py's VERIFY_PATTERN), whose target is an SQS queue (Lambda is not run
by moto). :func:`main` is the worker `make run` starts: it takes each message off the
queue and runs app.py's ``verify_upload`` through Chalice's own local invocation
(``chalice.test.Client.lambda_.invoke``), with the stage's settings, as Lambda would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping

from chalicelib.settings import Settings
from chalicelib.verify import event_pattern
from infra.stages import stage_environment

RULE = "presigned-upload-verify"
QUEUE = "presigned-upload-verify"


def wire(settings: Settings, env: Mapping[str, str]) -> str:
    """S3's events of the bucket to EventBridge, the rule with the app's own pattern, and
    its queue; the queue's URL."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    endpoint = settings.endpoint_url
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    events = session.client("events", endpoint_url=endpoint)
    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue: str = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    pattern = event_pattern(settings.bucket, settings.prefix)
    events.put_rule(Name=RULE, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=RULE, Targets=[{"Id": "verifier",
                                            "Arn": arn["Attributes"]["QueueArn"]}])  # fmt: skip
    return queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.events", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--queue-url", required=True)
    args = parser.parse_args(argv)
    # The stage's settings, then what the user exported (as devstack.chalice_local does),
    # before app.py is imported: it reads some of them then.
    overrides = json.loads(os.environ.get("DEVSTACK_SETTINGS") or "{}")
    os.environ.update({**stage_environment(args.stage), **overrides})
    import boto3
    from chalice.test import Client

    import app

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    with Client(app.app, stage_name=args.stage) as client:
        os.environ.update(overrides)  # the Client applied config.json's values again
        while True:
            got = sqs.receive_message(QueueUrl=args.queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=1)  # fmt: skip
            for message in got.get("Messages", []):
                try:
                    answer = client.lambda_.invoke("verify_upload", json.loads(message["Body"]))
                except Exception as exc:
                    print(f"devstack: verifier failed: {exc!r}", file=sys.stderr, flush=True)
                    time.sleep(1)
                    continue
                sqs.delete_message(QueueUrl=args.queue_url,
                                   ReceiptHandle=message["ReceiptHandle"])  # fmt: skip
                verdict = answer.payload.get("verdict")
                if verdict is not None:
                    state = "verified" if verdict["reason"] is None else "rejected"
                    print(f"devstack: {verdict['key']}: {state}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
