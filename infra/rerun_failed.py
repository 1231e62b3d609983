"""Run the verifier again on the events it gave up on.

    python -m infra.rerun_failed --stage prod      (make rerun-failed STAGE=prod)

An event the verifier failed on three times (Lambda's two retries) waits on the stage's
failure queue, ``presigned-upload-<stage>-verify-failures`` (infra/package.py), as
Lambda's on-failure record, whose ``requestPayload`` is the event. Once the cause is
fixed, this invokes the verifier with each event again, synchronously, and deletes the
record only when that run succeeded; a run that failed again (the CLI's ``lambda invoke``
would still exit 0) leaves its record, hidden for HIDE_SECONDS so that this pass does not
take it again, and says why. Re-running an event is idempotent: a verdict, a quota
settlement counts once (docs/quotas.md says what the order of events can still change).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from infra.stages import APP_NAME

HIDE_SECONDS = 900  # a record that failed again stays off the queue for this pass
VERIFIER_TIMEOUT = 120  # seconds (chalice's config): a synchronous run may take that long

Invoke = Callable[[bytes], str | None]  # an event's bytes -> None, or the run's error


def rerun(sqs: Any, queue_url: str, invoke: Invoke,
          say: Callable[[str], None] = print) -> tuple[int, int]:  # fmt: skip
    """Run every record on the queue again: (how many ran, how many failed again)."""
    ran = failed = 0
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1, VisibilityTimeout=HIDE_SECONDS)  # fmt: skip
        messages = got.get("Messages", [])
        if not messages:
            return ran, failed
        for message in messages:
            try:
                event = json.loads(message["Body"])["requestPayload"]
            except (ValueError, KeyError, TypeError):
                say(f"{message['MessageId']}: not Lambda's failure record; left on the queue")
                failed += 1
                continue
            error = invoke(json.dumps(event).encode())
            if error is None:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                ran += 1
            else:
                say(f"{message['MessageId']}: failed again, left on the queue: {error}")
                failed += 1


def lambda_invoker(client: Any, function: str) -> Invoke:
    """Invoke ``function`` and wait for it: None when it succeeded, else its error (Lambda
    answers 200 with ``FunctionError`` when the function raised)."""

    def invoke(payload: bytes) -> str | None:
        answer = client.invoke(FunctionName=function, Payload=payload)
        if "FunctionError" not in answer:
            return None
        return str(answer["Payload"].read().decode(errors="replace"))[:500]

    return invoke


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rerun_failed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", help="the stack's region (else the AWS configuration's)")
    args = parser.parse_args(argv)
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=args.region)
    name = f"{APP_NAME}-{args.stage}"
    sqs = session.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=f"{name}-verify-failures")["QueueUrl"]
    # A run may take the verifier's whole timeout: no read timeout, no retry, before it.
    config = Config(read_timeout=VERIFIER_TIMEOUT + 10, retries={"total_max_attempts": 1})
    invoke = lambda_invoker(session.client("lambda", config=config), f"{name}-verify_upload")
    ran, failed = rerun(sqs, queue_url, invoke)
    print(f"{ran} event(s) run again; {failed} left on the queue")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
