"""Checking what landed: the handler of S3's "Object Created" events (app.py).

For each new object under the upload prefix, the verifier reads its head and its first
bytes (one ranged GET), and decides:

- ``verified`` when its key is one this service issues, its size is within the limit, S3
  stored no header the service does not set (:func:`stored_header_problem`), and its
  bytes are what its Content-Type says (chalicelib/verifier/sniff.py); the object is tagged
  ``upload-status=verified`` (its other tags kept);
- ``rejected`` otherwise: the object is moved to ``<UPLOAD_QUARANTINE_PREFIX><its key>``
  with the tags ``upload-status=rejected`` and ``upload-reason``, out of reach of the
  download route. Objects over :data:`QUARANTINE_COPY_LIMIT` are not copied (a copy that
  size could outlast the function): an empty marker with the tags takes their place.

With UPLOAD_MALWARE_SCAN the verdict has a second check: GuardDuty Malware Protection for
S3 scans each new object and publishes its result (:class:`ScanResult`), which this
verifier also receives. An upload is ``verified`` only when its type check has passed and
the scan of these very bytes (its ETag) found no threat; a threat rejects it with the
reason ``malware``; a scan without a result (UNSUPPORTED, ACCESS_DENIED, FAILED) rejects
it with the reason ``unscanned``, or with UPLOAD_UNSCANNED=allow lets the type check
decide. Until both are in, the object is left as it is (GET /uploads/{uuid} says
``scanning``). Either event may come first, and each may come twice: the "Object
Created" event rejects an upload whose type check fails at once, and otherwise waits;
the scan result runs the type check again itself and decides. So only the scan's event
ever writes a ``verified`` verdict, whatever the order, and the type check's reason comes
first in both orders.

Each verdict is published as an EventBridge event (``source: presigned-upload``,
``detail-type: Upload Verified | Upload Rejected``) on UPLOAD_EVENT_BUS, and sent to
UPLOAD_WEBHOOK_URL if set (chalicelib/verifier/webhook.py). The event goes out before the object
is tagged or moved: if the tagging fails, Lambda runs the handler again and the event is
sent twice, never lost (EventBridge is at-least-once anyway; subscribers dedupe by UUID).
The webhook goes last, best effort: it never holds up or undoes a verdict. A verdict
names the ETag and type it is about (tags ``upload-etag``, ``upload-type``): an object
already judged is left alone, so a repeated S3 event changes nothing, and bytes replaced
since are judged by their own event. Every call after the HEAD is conditional on that
ETag.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.core import metrics, tags
from chalicelib.core.checksums import stored_checksum
from chalicelib.core.errors import ServiceError
from chalicelib.core.keys import issued_key
from chalicelib.core.media_types import scriptable
from chalicelib.core.rules import (
    FILENAME_METADATA,
    content_disposition,
    essence_of,
    filename_from_metadata,
)
from chalicelib.core.s3 import storage_errors
from chalicelib.core.settings import Settings
from chalicelib.verifier import GUARDDUTY_TAG
from chalicelib.verifier.sniff import HEAD_BYTES, content_problem, extension_problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

SOURCE = "presigned-upload"
SERVICE = "presigned-upload-verifier"  # the metrics' service, outside Lambda
# GuardDuty's scan results (scanResultDetails.scanResultStatus).
NO_THREATS_FOUND, THREATS_FOUND = "NO_THREATS_FOUND", "THREATS_FOUND"
UNSCANNED = ("UNSUPPORTED", "ACCESS_DENIED", "FAILED")
SCAN_TAG_WAITS = (0.5, 1.0, 2.0)  # seconds between looks for that tag, then a retry
DETAIL_TYPES = {True: "Upload Verified", False: "Upload Rejected"}
QUARANTINE_COPY_LIMIT = 100 * 1024 * 1024


class ScanTagPending(ServiceError):
    """GuardDuty has not tagged the object with the result yet; Lambda retries."""


class PublishFailed(ServiceError):
    """EventBridge did not take the verdict's event; the handler fails, and is retried."""


@dataclass(frozen=True)
class Verdict:
    """What the verifier decided about one object, and what the event says."""

    upload_id: str | None
    key: str
    principal: str | None
    size: int
    content_type: str | None
    etag: str
    checksum: dict[str, str] | None
    reason: str | None
    # GuardDuty's scan result for these bytes, with UPLOAD_MALWARE_SCAN.
    scan: str | None = None

    @property
    def verified(self) -> bool:
        return self.reason is None

    def detail(self) -> dict[str, Any]:
        """The event's detail (and the webhook's body)."""
        return {
            "UUID": self.upload_id,
            "key": self.key,
            "principal": self.principal,
            "size": self.size,
            "content_type": self.content_type,
            "etag": self.etag,
            "checksum": self.checksum,
            "reason": self.reason,
            "scan": self.scan,
        }


@dataclass(frozen=True)
class ScanResult:
    """GuardDuty's result for one object: its event's ``s3ObjectDetails`` and
    ``scanResultDetails``."""

    bucket: str
    key: str
    etag: str
    status: str
    threats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, detail: Any) -> ScanResult | None:
        """The result in an event's detail, or None if it is not one (the handler must
        not crash on an odd event)."""
        try:
            found = detail["s3ObjectDetails"]
            bucket, key, etag = found["bucketName"], found["objectKey"], found["eTag"]
            status = detail["scanResultDetails"]["scanResultStatus"]
            threats = detail["scanResultDetails"].get("threats") or []
        except (KeyError, TypeError, AttributeError):
            return None
        if not all(isinstance(v, str) for v in (bucket, key, etag, status)):
            return None
        if not isinstance(threats, list):
            threats = []
        names = tuple(str(t.get("name"))[:100] for t in threats[:5] if isinstance(t, dict))
        return cls(bucket, key, etag.strip('"'), status[:40], names)


class Verifier:
    """Judges new objects in the settings' bucket. ``per_principal``: auth is on, so keys
    sit in a caller's folder. The clients are built on first use."""

    def __init__(
        self,
        s3: Callable[[], S3Client],
        events: Callable[[], Any],
        settings: Settings,
        per_principal: bool,
        notify: Callable[[str, dict[str, Any]], object] | None = None,
        settle: Callable[[Verdict], None] | None = None,
        service: str = SERVICE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self._events = events
        self._settings = settings
        self._per_principal = per_principal
        self._notify = notify
        self._settle = settle
        self._service = service
        self._sleep = sleep

    def verify(self, bucket: str, key: str) -> Verdict | None:
        """Judge ``key`` (S3's "Object Created"); None when there is nothing to do
        (another bucket, the object is gone or was replaced meanwhile, these bytes and
        type were judged already, or their type check passed and the malware scan is
        awaited), each logged. A refusal by S3 (a 403 among them: the role may list the
        prefix, so a missing object is a 404) or EventBridge raises: Lambda retries, and
        the verifier's Errors alarm fires."""
        return self._decide(bucket, key, None)

    def scanned(self, result: ScanResult) -> Verdict | None:
        """Judge the object GuardDuty scanned, its type check included; None as for
        :meth:`verify`, and when the object holds other bytes than those scanned (the new
        bytes' own scan follows)."""
        if not self._settings.malware_scan:
            return _skipped(result.key, "a scan result, but UPLOAD_MALWARE_SCAN is off")
        return self._decide(result.bucket, result.key, result)

    def _decide(self, bucket: str, key: str, scan: ScanResult | None) -> Verdict | None:
        if bucket != self._settings.bucket:
            return _skipped(key, "another bucket")
        try:
            with storage_errors(_GONE):
                head = self._s3().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
                held = tags.as_dict(self._s3().get_object_tagging(Bucket=bucket, Key=key)["TagSet"])
            etag, declared = head["ETag"], head.get("ContentType")
            if scan is not None and scan.etag != etag.strip('"'):
                return _skipped(key, "scanned bytes replaced since (the new ones' scan follows)")
            # A threat found in bytes verified already (a later scan, with newer
            # signatures) judges them again; any other event leaves a verdict as it is.
            threat = scan is not None and scan.status == THREATS_FOUND
            if tags.about(held, etag, declared) and not threat:
                return _skipped(key, "judged already")
            verdict = self._judge(key, head, scan)
            if verdict is None:
                return _skipped(key, "type check passed; waiting for the malware scan")
            if scan is not None and verdict.verified:
                held = self._after_guardduty_tagged(key, scan, held)
            self._publish(verdict)  # first: if what follows fails, the retry sends it again
            if self._settle is not None:  # the quotas, before the tag that ends the retries
                self._settle(verdict)
            if verdict.verified:
                held.update({tags.STATUS: tags.VERIFIED, **tags.judged(etag, declared)})
                with storage_errors(_GONE):
                    self._s3().put_object_tagging(
                        Bucket=bucket, Key=key, Tagging=tags.as_tag_set(held)
                    )
            else:
                assert verdict.reason is not None
                self._quarantine(key, etag, verdict.size, verdict.reason)
        except _Gone:
            return _skipped(key, "gone, or replaced since the event (its own event follows)")
        _log(verdict, self._service)
        if self._notify is not None:
            self._notify(DETAIL_TYPES[verdict.verified], verdict.detail())  # never raises
        return verdict

    def _after_guardduty_tagged(self, key: str, scan: ScanResult,
                                held: dict[str, str]) -> dict[str, str]:  # fmt: skip
        """The object's tags once GuardDuty's own tag names this result. GuardDuty reads
        and rewrites the whole tag set, as the verdict does, and AWS does not say whether
        it tags before or after it publishes the result: a verdict written first could be
        wiped by its tagging, leaving the upload ``scanning``. So the verdict waits for
        that tag (briefly, then Lambda's retries); with it there, nothing follows."""
        for pause in (*SCAN_TAG_WAITS, None):
            if held.get(GUARDDUTY_TAG) == scan.status:
                return held
            if pause is None:
                raise ScanTagPending(
                    f"GuardDuty's tag {GUARDDUTY_TAG} does not say {scan.status} yet; "
                    "Lambda retries the event"
                )
            self._sleep(pause)
            with storage_errors(_GONE):
                found = self._s3().get_object_tagging(Bucket=self._settings.bucket, Key=key)
            held = tags.as_dict(found["TagSet"])
        raise AssertionError("unreachable")

    def _judge(self, key: str, head: HeadObjectOutputTypeDef,
               scan: ScanResult | None) -> Verdict | None:  # fmt: skip
        """The verdict on these bytes; None when their type check passed and the malware
        scan (UPLOAD_MALWARE_SCAN) is still to come."""
        issued = issued_key(self._settings.prefix, key, self._per_principal)
        principal, upload_id = issued if issued else (None, None)
        size, declared = head["ContentLength"], head.get("ContentType")
        checksum = stored_checksum(head)
        limit = self._settings.object_size_limit
        if issued is None:
            reason: str | None = "unknown-key: not a key this service issues"
        elif size > limit:
            reason = f"too-large: {size} bytes over the limit of {limit}"
        else:
            head_bytes = self._first_bytes(key, head["ETag"], size)
            filename = filename_from_metadata(head.get("Metadata", {}))
            reason = (
                stored_header_problem(head, filename, declared)
                or extension_problem(key, filename, declared, self._settings)
                or content_problem(head_bytes, declared, self._settings)
            )
        scanned = None  # the scan's result, when the scan decided (never the type check)
        if reason is None and self._settings.malware_scan:
            if scan is None:
                return None
            reason, scanned = scan_problem(scan, self._settings.unscanned), scan.status
        return Verdict(upload_id, key, principal, size, declared, head["ETag"].strip('"'),
                       checksum.to_response() if checksum else None, reason,
                       scanned)  # fmt: skip

    def _first_bytes(self, key: str, etag: str, size: int) -> bytes:
        if size == 0:
            return b""
        # IfMatch: the bytes read are those of the object the HEAD described (412 if it
        # was replaced since; its own event will come).
        with storage_errors(_GONE):
            got = self._s3().get_object(
                Bucket=self._settings.bucket,
                Key=key,
                Range=f"bytes=0-{HEAD_BYTES - 1}",
                IfMatch=etag,
            )
        body: bytes = got["Body"].read(HEAD_BYTES)
        return body

    def _quarantine(self, key: str, etag: str, size: int, reason: str) -> None:
        bucket = self._settings.bucket
        target = self._settings.quarantine_prefix + key
        tagging = tags.as_header({tags.STATUS: tags.REJECTED, tags.REASON: tags.tag_value(reason)})
        # Copied, then deleted, only if it is still the object judged (else 412: the new
        # one's own event judges it).
        with storage_errors(_GONE):
            if size <= QUARANTINE_COPY_LIMIT:
                self._s3().copy_object(
                    Bucket=bucket,
                    Key=target,
                    CopySource={"Bucket": bucket, "Key": key},
                    CopySourceIfMatch=etag,
                    TaggingDirective="REPLACE",
                    Tagging=tagging,
                )
            else:
                self._s3().put_object(Bucket=bucket, Key=target, Body=b"", Tagging=tagging)
        self._delete(key, etag)

    def _delete(self, key: str, etag: str) -> None:
        """Delete ``key`` only if it still holds ``etag`` (412 if not: the new object's
        own event judges it). An S3 without conditional deletes (LocalStack 4.14 answers
        NotImplemented) gets a HEAD first instead: a replacement that lands between the
        two is deleted unjudged, a window AWS's S3 does not have."""
        bucket = self._settings.bucket
        try:
            with storage_errors({**_GONE, "NotImplemented": _Unconditional()}):
                self._s3().delete_object(Bucket=bucket, Key=key, IfMatch=etag)
        except _Unconditional:
            with storage_errors(_GONE):
                if self._s3().head_object(Bucket=bucket, Key=key)["ETag"] != etag:
                    raise _Gone() from None
                self._s3().delete_object(Bucket=bucket, Key=key)

    def _publish(self, verdict: Verdict) -> None:
        detail_type = DETAIL_TYPES[verdict.verified]
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(verdict.detail()),
            "EventBusName": self._settings.event_bus,
            "Resources": [f"arn:aws:s3:::{self._settings.bucket}/{verdict.key}"],
        }
        with storage_errors():
            answer = self._events().put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            code = answer["Entries"][0].get("ErrorCode", "unknown")
            raise PublishFailed(f"EventBridge refused the {detail_type} event ({code})")


# What S3 returns (HEAD) for the headers an uploader could add without their being
# signed, and that a CDN, a browser or a subscriber then acts on; the service sets none.
UNSET_HEADERS = {"ContentEncoding": "Content-Encoding", "CacheControl": "Cache-Control",
                 "ContentLanguage": "Content-Language", "ExpiresString": "Expires",
                 "Expires": "Expires",  # an older botocore (Lambda's own) gives only this
                 "WebsiteRedirectLocation": "x-amz-website-redirect-location"}  # fmt: skip
# Cache-Control directives that only keep a cache from serving the object: a browser's
# PUT carries one (Chromium sends "max-age=0" after a reload), and S3 stores it.
HARMLESS_CACHE_DIRECTIVES = frozenset({"no-cache", "no-store", "max-age=0", "must-revalidate",
                                       "proxy-revalidate", "private", "no-transform"})  # fmt: skip


def _harmless_cache_control(value: str) -> bool:
    directives = {d.strip().lower() for d in value.split(",")} - {""}
    return directives <= HARMLESS_CACHE_DIRECTIVES


def stored_header_problem(
    head: HeadObjectOutputTypeDef, filename: str | None, declared: str | None
) -> str | None:
    """Why the headers S3 stored are not ones the service signs, or None. A presigned
    PUT or create verifies only its signed headers, so an uploader may add others: a
    ``Content-Disposition`` naming another file, a ``Content-Encoding``, metadata. The
    service stores at most the type, ``x-amz-meta-filename`` and a Content-Disposition
    made from that name (``attachment``, or ``inline`` for a type that runs no script).
    A Cache-Control that only keeps caches from serving the object passes: browsers send
    one with their PUTs."""
    for field, header in UNSET_HEADERS.items():
        value = head.get(field)
        if not value or (field == "CacheControl" and _harmless_cache_control(str(value))):
            continue
        return f"unexpected-header: {header} is set but the service sets none"
    extra = sorted(set(head.get("Metadata", {})) - {FILENAME_METADATA})
    if extra:
        return f"unexpected-header: x-amz-meta-{extra[0][:40]} is not one the service sets"
    disposition = head.get("ContentDisposition")
    if not disposition:
        return None
    allowed = ["attachment"] if declared is None or scriptable(essence_of(declared)) else [
        "attachment", "inline"]  # fmt: skip
    if filename is None or disposition not in {content_disposition(d, filename) for d in allowed}:
        return "unexpected-header: Content-Disposition is not the one the service signs"
    return None


class _Unconditional(ServiceError):
    """This S3 cannot delete conditionally."""


class _Gone(ServiceError):
    """The object is no longer there, or is no longer the one judged (412)."""


_GONE: dict[str, ServiceError] = {
    code: _Gone() for code in ("404", "NoSuchKey", "412", "PreconditionFailed")
}


def scan_problem(scan: ScanResult, unscanned: str) -> str | None:
    """Why GuardDuty's result rejects the upload, or None: a threat always does; a scan
    without a result (UNSUPPORTED, ACCESS_DENIED, FAILED, or one this code does not know)
    does unless UPLOAD_UNSCANNED is ``allow``."""
    if scan.status == NO_THREATS_FOUND:
        return None
    if scan.status == THREATS_FOUND:
        # In the words a tag can hold, so that the status route's reason (read from the
        # quarantine's tag) is the event's.
        named = " / ".join(filter(None, map(tags.readable_value, scan.threats)))
        return tags.readable_value(f"malware: GuardDuty found {named or 'a threat'}")
    if unscanned == "allow" and scan.status in UNSCANNED:
        return None
    return tags.readable_value(f"unscanned: the malware scan ended {scan.status} without a result")


def skipped_event(detail_type: str, why: str) -> None:
    """A line for an event that names no object to judge (a silent no-op would hide a
    lost scan result)."""
    record = {"level": "WARNING", "verdict": None, "event": detail_type[:100], "skipped": why}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def _skipped(key: str, why: str) -> Verdict | None:
    """No verdict, and a line that says why (a silent no-op would hide a fault)."""
    record = {"level": "INFO", "verdict": None, "key": key[:300], "skipped": why}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    return None


def _log(verdict: Verdict, service: str) -> None:
    """The verdict's line; one with a scan result carries its metric (EMF, as the API's
    request lines do): ``malware_found`` or ``unscanned``, by service."""
    record: dict[str, Any] = {"level": "INFO" if verdict.verified else "WARNING",
                              "verdict": tags.VERIFIED if verdict.verified else tags.REJECTED,
                              "UUID": verdict.upload_id, "key": verdict.key[:300],
                              "size": verdict.size, "reason": verdict.reason}  # fmt: skip
    if verdict.scan is not None:
        record["scan"] = verdict.scan
        metric = scan_metric(verdict.scan)
        if metric is not None:
            record = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
                         {"Namespace": metrics.NAMESPACE, "Dimensions": [["service"]],
                          "Metrics": [{"Name": metric, "Unit": "Count"}]}]},
                      "service": service, metric: 1, **record}  # fmt: skip
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


def scan_metric(status: str) -> str | None:
    """The metric a scan result counts in: ``malware_found``, ``unscanned`` or none."""
    if status == NO_THREATS_FOUND:
        return None
    return "malware_found" if status == THREATS_FOUND else "unscanned"
