"""Checking what landed (verify.py), in a Lambda function of its own.

Only the rule's event pattern lives here: app.py reads it at import on stages that
verify, so that ``chalice package`` can write the rule, and the API function's cold start
never loads the verifier's modules for it.
"""

from __future__ import annotations

from typing import Any


def event_pattern(bucket: str, prefix: str, deletions: bool = False) -> dict[str, Any]:
    """The EventBridge pattern of the verifier's rule: new objects under the prefix, and
    with ``deletions`` (quotas: a deleted upload gives its bytes back) deleted ones."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"] if deletions else ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}},
    }
