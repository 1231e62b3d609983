"""Checking what landed (verify.py), in a Lambda function of its own.

Only the rule's event pattern lives here: app.py reads it at import on stages that
verify, so that ``chalice package`` can write the rule, and the API function's cold start
never loads the verifier's modules for it.
"""

from __future__ import annotations

from typing import Any

# GuardDuty Malware Protection for S3 publishes each object's scan result as this event
# on the account's default bus (docs/security.md).
SCAN_SOURCE = "aws.guardduty"
SCAN_DETAIL_TYPE = "GuardDuty Malware Protection Object Scan Result"
GUARDDUTY_TAG = "GuardDutyMalwareScanStatus"  # the result, as GuardDuty tags the object


def event_pattern(bucket: Any, prefix: str, deletions: bool = False,
                  scans: bool = False) -> dict[str, Any]:  # fmt: skip
    """The EventBridge pattern of the verifier's rule: new objects under the prefix; with
    ``deletions`` (quotas: a deleted upload gives its bytes back) deleted ones; with
    ``scans`` (UPLOAD_MALWARE_SCAN) GuardDuty's scan results for objects under the prefix
    too. ``bucket`` is its name, or a CloudFormation expression giving it."""
    s3 = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"] if deletions else ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}},
    }
    if not scans:
        return s3
    scan = {
        "source": [SCAN_SOURCE],
        "detail-type": [SCAN_DETAIL_TYPE],
        "detail": {"s3ObjectDetails": {"bucketName": [bucket],
                                       "objectKey": [{"prefix": prefix}]}},
    }  # fmt: skip
    return {"$or": [s3, scan]}
