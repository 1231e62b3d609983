"""The quota ledger (chalicelib/quotas/) against a real DynamoDB API: moto's server over
HTTP, which the ledger's own client signs and calls as it would AWS."""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib.core import metrics
from chalicelib.core.credentials import CredentialSource
from chalicelib.core.errors import ConfigError, QuotaBusy, QuotaExceeded, QuotaUnavailable
from chalicelib.core.settings import Settings
from chalicelib.quotas import dynamodb as dynamodb_module
from chalicelib.quotas.dynamodb import ATTEMPTS, Budget, DynamoDB, DynamoDBError
from chalicelib.quotas.ledger import (
    MAX_CONFLICTS,
    RELEASE_GRACE,
    RELEASED_KEEP_SECONDS,
    Ledger,
)
from devstack.__main__ import create_quota_table
from infra.policies import api_policy, verifier_policy
from tests.functional.conftest import BUCKET, app_module
from tests.support import free_port

KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
DAY_START = 1796428800  # 2026-12-05T00:00:00Z
_tables = itertools.count()


@pytest.fixture
def endpoint(s3_endpoint: str) -> str:
    """moto's server (conftest.py's, which serves DynamoDB as well as S3)."""
    return s3_endpoint


class Clock:
    def __init__(self, now: float = DAY_START + 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_ledger(endpoint: str, clock: Clock | None = None, **limits: Any) -> Ledger:
    """A ledger on a table of its own, created by devstack's own code (`make run`'s)."""
    settings = Settings(bucket="b", region="us-east-1", quota_table=f"quotas-{next(_tables)}",
                        dynamodb_endpoint_url=endpoint,
                        **{f"quota_{k}": v for k, v in limits.items()})  # fmt: skip
    create_quota_table(settings, {**KEYS, "AWS_REGION": "us-east-1"})
    db = DynamoDB(endpoint, "us-east-1", CredentialSource(KEYS))
    return Ledger(db, settings, clock=clock or Clock(), sleep=lambda _: None)


def table(ledger: Ledger, endpoint: str) -> Any:
    """The ledger's table through boto3: what DynamoDB itself (its TTL) or an operator does."""
    return boto3.resource("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                          aws_access_key_id="test", aws_secret_access_key="test"
                          ).Table(ledger._table)  # fmt: skip


def used(ledger: Ledger, owner: str = "alice") -> dict[str, int]:
    figures: dict[str, int] = ledger.usage(owner)["used"]
    return figures


def new_id() -> str:
    return str(uuid.uuid4())


def test_the_same_upload_reserved_twice_counts_once(endpoint):
    ledger = make_ledger(endpoint, files_per_day=5)
    upload = new_id()
    ledger.reserve("alice", upload, 100, 300)
    ledger.reserve("alice", upload, 100, 300)  # a retried call
    assert used(ledger) == {"files_today": 1, "bytes_today": 100, "stored_bytes": 100,
                            "uploads_in_flight": 1}  # fmt: skip


def test_each_limit_is_named_with_its_figures(endpoint):
    clock = Clock()
    ledger = make_ledger(endpoint, clock, files_per_day=3, bytes_per_day=1000, stored_bytes=600)
    ledger.reserve("alice", new_id(), 500, 300)
    with pytest.raises(QuotaExceeded) as stored:
        ledger.reserve("alice", new_id(), 101, 300)
    assert (stored.value.limit, stored.value.allowed, stored.value.used,
            stored.value.resets_at, stored.value.retry_after) == ("stored_bytes", 600, 500, None,
                                                                  3600)  # fmt: skip
    assert str(stored.value) == (
        "quota stored_bytes reached: 500 of 600 bytes stored; this upload may store up to 101 "
        "bytes; room comes back as uploads are deleted, expire or are rejected"
    )
    with pytest.raises(QuotaExceeded) as too_big:
        ledger.reserve("alice", new_id(), 1001, 300)
    assert (too_big.value.limit, too_big.value.retry_after) == ("bytes_per_day", 82800)
    ledger.reserve("alice", new_id(), 100, 300)
    ledger.reserve("alice", new_id(), 0, 300)
    with pytest.raises(QuotaExceeded) as files:
        ledger.reserve("alice", new_id(), 0, 300)
    assert (files.value.limit, files.value.used, files.value.resets_at) == (
        "files_per_day",
        3,
        "2026-12-06T00:00:00Z",
    )
    # Nothing refused was counted.
    assert used(ledger) == {"files_today": 3, "bytes_today": 600, "stored_bytes": 600,
                            "uploads_in_flight": 3}  # fmt: skip


def test_an_operators_override_in_the_table_wins_over_the_stage(endpoint):
    clock = Clock()
    ledger = make_ledger(endpoint, clock, files_per_day=1)
    table(ledger, endpoint).put_item(Item={"pk": "q#alice#limits", "files_per_day": 3})
    for _ in range(3):
        ledger.reserve("alice", new_id(), 1, 300)
    with pytest.raises(QuotaExceeded):
        ledger.reserve("alice", new_id(), 1, 300)
    assert ledger.usage("alice")["limits"] == {"files_per_day": 3, "bytes_per_day": None,
                                               "stored_bytes": None}  # fmt: skip
    ledger.reserve("bob", new_id(), 1, 300)  # bob has the stage's 1
    with pytest.raises(QuotaExceeded):
        ledger.reserve("bob", new_id(), 1, 300)


def test_an_upload_that_never_arrives_gives_its_room_back_when_the_owner_needs_it(endpoint):
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=100)
    ledger.reserve("alice", new_id(), 100, 300)
    with pytest.raises(QuotaExceeded):
        ledger.reserve("alice", new_id(), 1, 300)
    clock.now += 301  # the first URL has expired: its upload may still be in verification
    with pytest.raises(QuotaExceeded):
        ledger.reserve("alice", new_id(), 1, 300)
    clock.now += RELEASE_GRACE  # and it never arrived
    ledger.reserve("alice", new_id(), 100, 300)
    assert used(ledger) == {"files_today": 2, "bytes_today": 100, "stored_bytes": 100,
                            "uploads_in_flight": 1}  # fmt: skip


def test_what_lands_replaces_its_reservation_once_and_a_late_expiry_changes_nothing(endpoint):
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 800, 300)
    ledger.landed(upload, 600)
    ledger.landed(upload, 600)  # the event, delivered twice
    assert used(ledger) == {"files_today": 1, "bytes_today": 600, "stored_bytes": 600,
                            "uploads_in_flight": 0}  # fmt: skip
    clock.now += 10_000
    ledger.release(upload)  # a rejection after the landing: the object is stored
    ledger.reserve("alice", new_id(), 400, 300)  # exactly what is left
    assert used(ledger)["stored_bytes"] == 1000


def test_a_rejected_upload_gives_back_its_bytes_but_not_its_url(endpoint):
    ledger = make_ledger(endpoint, files_per_day=2, bytes_per_day=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 900, 300)
    ledger.release(upload)
    ledger.release(upload)  # twice: once
    assert used(ledger) == {"files_today": 1, "bytes_today": 0, "stored_bytes": 0,
                            "uploads_in_flight": 0}  # fmt: skip


def test_bytes_stored_through_a_url_after_its_reservation_was_given_back_are_counted(endpoint):
    # The URL still works after a rejection (or an abort, or its expiry while the verdict
    # was pending): what it stores then counts, once, even past the limit.
    ledger = make_ledger(endpoint, stored_bytes=1000, bytes_per_day=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 900, 300)
    ledger.release(upload)  # rejected
    ledger.landed(upload, 900, "etag-good")  # the same URL, good bytes this time
    ledger.landed(upload, 900, "etag-good")  # the event again
    assert used(ledger) == {"files_today": 1, "bytes_today": 900, "stored_bytes": 900,
                            "uploads_in_flight": 0}  # fmt: skip
    with pytest.raises(QuotaExceeded):
        ledger.reserve("alice", new_id(), 200, 300)


def test_an_upload_whose_url_expired_before_its_verdict_counts_when_it_lands(endpoint):
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=1000)
    late = new_id()
    ledger.reserve("alice", late, 1000, 120)
    # expired: its bytes are in S3, their malware scan stuck past the grace period
    clock.now += 121 + RELEASE_GRACE
    ledger.reserve("alice", new_id(), 1000, 120)  # given back to make room
    ledger.landed(late, 1000, "etag-late")
    assert used(ledger) == {"files_today": 2, "bytes_today": 2000, "stored_bytes": 2000,
                            "uploads_in_flight": 1}  # fmt: skip
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve("alice", new_id(), 1, 120)
    assert (refused.value.limit, refused.value.used) == ("stored_bytes", 2000)


def test_an_object_replaced_through_the_same_url_counts_at_its_new_size(endpoint):
    ledger = make_ledger(endpoint, stored_bytes=5000)
    upload = new_id()
    ledger.reserve("alice", upload, 5000, 300)  # a POST policy: the stage's maximum
    ledger.landed(upload, 100, "etag-small")
    ledger.landed(upload, 5000, "etag-big")  # posted again with the same policy
    ledger.landed(upload, 5000, "etag-big")
    assert used(ledger) == {"files_today": 1, "bytes_today": 5000, "stored_bytes": 5000,
                            "uploads_in_flight": 0}  # fmt: skip
    ledger.landed(upload, 300, "etag-smaller")
    assert used(ledger)["stored_bytes"] == 300
    ledger.deleted(upload)
    ledger.deleted(upload)
    assert used(ledger)["stored_bytes"] == 0
    ledger.landed(upload, 700, "etag-again")  # the URL used again after the deletion
    assert used(ledger)["stored_bytes"] == 700


def test_a_deleted_upload_leaves_the_stored_total_once(endpoint):
    ledger = make_ledger(endpoint, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 500, 300)
    ledger.deleted(upload)  # not landed yet: nothing stored to take out
    ledger.landed(upload, 500)
    ledger.deleted(upload)
    ledger.deleted(upload)
    assert used(ledger) == {"files_today": 1, "bytes_today": 500, "stored_bytes": 0,
                            "uploads_in_flight": 0}  # fmt: skip


def test_a_missing_table_is_a_named_configuration_error(endpoint):
    settings = Settings(bucket="b", region="us-east-1", quota_table="no-such-table",
                        quota_files_per_day=1)  # fmt: skip
    ledger = Ledger(DynamoDB(endpoint, "us-east-1", CredentialSource(KEYS)), settings)
    with pytest.raises(ConfigError, match=r"^DynamoDB refused the quota table's request "
                       r"\(ResourceNotFoundException\); check UPLOAD_QUOTA_TABLE"):  # fmt: skip
        ledger.reserve("alice", new_id(), 1, 300)


def test_an_unreachable_table_is_a_503_after_two_attempts_or_with_fail_open_a_counted_pass(
    monkeypatch,
):
    closed = f"http://127.0.0.1:{free_port()}"
    sent: list[str] = []
    real = DynamoDB._send

    def counting(self, operation, body):
        sent.append(operation)
        return real(self, operation, body)

    monkeypatch.setattr(DynamoDB, "_send", counting)
    settings = Settings(bucket="b", region="us-east-1", quota_files_per_day=1)
    db = DynamoDB(closed, "us-east-1", CredentialSource(KEYS), sleep=lambda _: None)
    with pytest.raises(QuotaUnavailable, match=r"^the quota table is unavailable "
                       r"\(ConnectionError\); no URL is issued uncounted"):  # fmt: skip
        Ledger(db, settings).reserve("alice", new_id(), 1, 300)
    assert sent == ["GetItem"] * ATTEMPTS  # the limits' read, attempted twice
    sent.clear()
    log = io.StringIO()
    monkeypatch.setattr("sys.stdout", log)
    counters = metrics.begin()
    Ledger(db, settings._replace(quota_fail_open=True)).reserve("alice", new_id(), 1, 300)
    assert counters == {"quota_fail_open": 1}
    assert json.loads(log.getvalue()) == {
        "level": "ERROR", "quota": "fail-open",
        "reason": "the quota table is unavailable (ConnectionError); no URL is issued "
                  "uncounted; try again shortly"}  # fmt: skip


def test_a_call_that_could_end_past_the_budget_is_not_started():
    clock = Clock(0.0)
    budget = Budget(5.0, clock=clock)
    with pytest.raises(QuotaUnavailable, match="answering too slowly"):
        budget.reserve(dynamodb_module.CALL_WORST_CASE)  # 6.1 s > 5 s
    assert dynamodb_module.CALL_WORST_CASE == 6.1


DRIPPED = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"{" * 10_000


def dripping_dynamodb(first: bytes | None = None) -> tuple[DynamoDB, Callable[[], list[int]]]:
    """A client of a server that answers ``first`` whole (if given) and then drips
    DRIPPED a byte at a time on each attempt's connection; with a function that stops it
    and says how many bytes each drip got out. The client's clock says 0.3 s passed at
    each look, so that each read looks slow."""
    dripped: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        if first is not None:
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(first)
            conn.close()
        for _ in range(dynamodb_module.ATTEMPTS):
            conn, _ = listener.accept()
            conn.recv(65536)
            sent = 0
            with contextlib.suppress(OSError):
                for byte in DRIPPED:
                    conn.sendall(bytes([byte]))
                    sent += 1
                    time.sleep(0.001)
            dripped.append(sent)
            conn.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    def stop() -> list[int]:
        server.join(timeout=30)
        listener.close()
        return dripped

    clock = itertools.count(0.0, 0.3).__next__
    db = DynamoDB(f"http://127.0.0.1:{listener.getsockname()[1]}", "us-east-1",
                  CredentialSource(KEYS), sleep=lambda _: None, monotonic=clock)  # fmt: skip
    return db, stop


def test_an_answer_dripped_a_byte_at_a_time_ends_the_attempt_at_its_read_timeout():
    # A socket timeout bounds each read: an answer that drips never times out on its own.
    # Here each read takes 0.3 s, and the server would drip 10,000 bytes: each attempt
    # stops at READ_TIMEOUT (2 s, 7 reads), and the call after two.
    db, stop = dripping_dynamodb()
    with pytest.raises(QuotaUnavailable, match=r"unavailable \(ConnectionError\)"):
        db.call("GetItem", {}, Budget(60))
    dripped = stop()
    assert len(dripped) == dynamodb_module.ATTEMPTS
    assert all(sent < len(DRIPPED) for sent in dripped), dripped


class ConflictingDB:
    """Cancels ``conflicts`` transactions as a concurrent one would (or, with another
    ``reason``, as DynamoDB does for a throttled item), then lets them by."""

    def __init__(self, real: DynamoDB, conflicts: int, reason: str = "TransactionConflict") -> None:
        self._real, self.conflicts, self._reason = real, conflicts, reason

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        if operation == "TransactWriteItems" and self.conflicts:
            self.conflicts -= 1
            reasons = [{"Code": "None"}, {"Code": self._reason}, {"Code": "None"}]
            raise DynamoDBError("TransactionCanceledException", "conflict",
                                {"CancellationReasons": reasons})  # fmt: skip
        return self._real.call(operation, payload, budget)


def test_a_transaction_cancelled_by_a_concurrent_one_is_retried_not_called_a_quota(endpoint):
    ledger = make_ledger(endpoint, files_per_day=1)
    ledger._db = ConflictingDB(ledger._db, conflicts=3)  # type: ignore[assignment]
    ledger.reserve("alice", new_id(), 1, 300)
    assert used(ledger)["files_today"] == 1
    ledger._db = ConflictingDB(ledger._db, conflicts=5)  # type: ignore[assignment]
    with pytest.raises(QuotaUnavailable, match="busy with this caller's other requests"):
        ledger.reserve("bob", new_id(), 1, 300)


def test_fail_open_never_passes_a_caller_who_keeps_its_own_transactions_busy(endpoint):
    # Bursts of one's own requests must not be a way to be uncounted.
    ledger = make_ledger(endpoint, files_per_day=1)
    ledger._settings = ledger._settings._replace(quota_fail_open=True)
    ledger._db = ConflictingDB(ledger._db, conflicts=5)  # type: ignore[assignment]
    counters = metrics.begin()
    with pytest.raises(QuotaBusy, match="busy with this caller's other requests"):
        ledger.reserve("carol", new_id(), 1, 300)
    assert counters == {}


def test_a_day_counter_holding_only_given_back_bytes_does_not_block_the_first_url(endpoint):
    # A settlement adds to a day's bytes (ADD creates the item): a counter without files.
    ledger = make_ledger(endpoint, files_per_day=1, bytes_per_day=100)
    table(ledger, endpoint).put_item(Item={"pk": "q#alice#day#2026-12-05", "bytes": -5})
    ledger.reserve("alice", new_id(), 100, 300)
    assert used(ledger)["files_today"] == 1


def test_an_abort_gives_back_only_its_callers_own_reservation(endpoint):
    ledger = make_ledger(endpoint, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 800, 300)
    ledger.release(upload, "bob")  # Alice's upload id in Bob's key: not his to give back
    assert used(ledger)["stored_bytes"] == 800
    ledger.release(upload, "alice")
    assert used(ledger)["stored_bytes"] == 0


def test_an_upload_bigger_than_a_whole_quota_is_told_it_can_never_fit(endpoint):
    ledger = make_ledger(endpoint, bytes_per_day=1000)
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve("alice", new_id(), 5 * 2**40, 172800)  # a multipart upload's 5 TiB
    assert str(refused.value) == (
        "quota bytes_per_day is 1000 bytes, and this upload may store up to 5497558138880 "
        "bytes: it can never fit; declare a smaller size (an upload without one, a POST "
        "policy or a multipart upload reserves the stage's UPLOAD_MAX_BYTES)"
    )
    assert (refused.value.limit, refused.value.allowed, refused.value.used) == (
        "bytes_per_day",
        1000,
        0,
    )


def test_reservations_whose_items_dynamodbs_ttl_deleted_are_still_given_back(endpoint):
    # DynamoDB deletes a reservation's item two days after its URL expired; its entry in
    # the owner's pending set must still come back, 25 per request that needs the room.
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=30)
    gone = [new_id() for _ in range(30)]
    for upload in gone:
        ledger.reserve("alice", upload, 1, 300)
        table(ledger, endpoint).delete_item(Key={"pk": f"u#{upload}"})
    clock.now += 300 + RELEASE_GRACE + 1
    ledger.reserve("alice", new_id(), 1, 300)  # needs one byte: the first 25 come back
    assert used(ledger)["uploads_in_flight"] == 6
    ledger.reserve("alice", new_id(), 25, 300)  # 7 used of 30: the last 5 come back
    assert used(ledger) == {"files_today": 32, "bytes_today": 26, "stored_bytes": 26,
                            "uploads_in_flight": 2}  # fmt: skip
    released = table(ledger, endpoint).get_item(Key={"pk": f"u#{gone[0]}"})["Item"]
    assert released == {"pk": f"u#{gone[0]}", "state": "released", "owner": "alice",
                        "day": "2026-12-05", "size": 1,
                        "expires_at": int(clock.now) + RELEASED_KEEP_SECONDS}  # fmt: skip
    ledger.landed(gone[0], 1, "etag-late")  # its URL was used after all: it counts
    assert used(ledger)["stored_bytes"] == 27


def test_an_entry_whose_upload_settled_otherwise_is_dropped_not_stuck(endpoint):
    # An item no longer reserved while its entry is still pending (a table edited by
    # hand): the entry goes, with its bytes, and the next ones are not held up by it.
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=100)
    stray = new_id()
    ledger.reserve("alice", stray, 100, 300)
    table(ledger, endpoint).update_item(Key={"pk": f"u#{stray}"},
                                        UpdateExpression="SET #s = :r",
                                        ExpressionAttributeNames={"#s": "state"},
                                        ExpressionAttributeValues={":r": "released"})  # fmt: skip
    clock.now += 300 + RELEASE_GRACE + 1
    ledger.reserve("alice", new_id(), 100, 300)
    assert used(ledger) == {"files_today": 2, "bytes_today": 100, "stored_bytes": 100,
                            "uploads_in_flight": 1}  # fmt: skip


class Interleaved:
    """Runs ``between`` (another settlement, through a ledger of its own) once, just before
    the first transaction of the given kind goes out: the race between a read and a write."""

    def __init__(self, real: DynamoDB, between: Callable[[], None] | None) -> None:
        self._real, self._between = real, between

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        if operation == "TransactWriteItems" and self._between is not None:
            between, self._between = self._between, None
            between()
        return self._real.call(operation, payload, budget)


def racing(endpoint: str, between: Callable[[Ledger, str], None],
           landed: tuple[int, str] | None = None) -> tuple[Ledger, str]:  # fmt: skip
    """A ledger with one upload of Alice's reserved (800 bytes of 1,000), and ``landed``
    (size, ETag) if given; just before its next transaction goes out, ``between`` runs on
    a second ledger of the same table: another Lambda settling the same upload."""
    ledger = make_ledger(endpoint, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 800, 300)
    if landed is not None:
        ledger.landed(upload, *landed)
    other = Ledger(ledger._db, ledger._settings, clock=ledger._clock, sleep=lambda _: None)
    ledger._db = Interleaved(ledger._db, lambda: between(other, upload))  # type: ignore[assignment]
    return ledger, upload


def test_a_landing_that_loses_a_race_with_a_rejection_is_read_again_and_counted(endpoint):
    ledger, upload = racing(endpoint, lambda other, upload: other.release(upload))
    ledger.landed(upload, 600, "etag-a")  # read "reserved"; released before it wrote
    assert used(ledger) == {"files_today": 1, "bytes_today": 600, "stored_bytes": 600,
                            "uploads_in_flight": 0}  # fmt: skip


def test_two_landings_of_different_objects_racing_count_one_object(endpoint):
    ledger, upload = racing(endpoint, lambda other, upload: other.landed(upload, 300, "etag-b"))
    ledger.landed(upload, 500, "etag-a")
    assert used(ledger) == {"files_today": 1, "bytes_today": 500, "stored_bytes": 500,
                            "uploads_in_flight": 0}  # fmt: skip


def test_a_deletion_racing_a_replacement_takes_out_what_is_stored(endpoint):
    ledger, upload = racing(endpoint, lambda other, upload: other.landed(upload, 700, "etag-b"),
                            landed=(300, "etag-a"))  # fmt: skip
    ledger.deleted(upload)  # read etag-a; etag-b replaced it before the write
    assert used(ledger)["stored_bytes"] == 0


SETTLEMENTS = {
    # name: (what comes before it, the settlement, stored bytes after it)
    "landed": (lambda ledger, upload: None,
               lambda ledger, upload: ledger.landed(upload, 100, "etag-a"), 100),
    "deleted": (lambda ledger, upload: ledger.landed(upload, 600, "etag-a"),
                lambda ledger, upload: ledger.deleted(upload), 0),
    "release": (lambda ledger, upload: None,
                lambda ledger, upload: ledger.release(upload), 0),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SETTLEMENTS))
def test_a_settlement_cancelled_by_the_owners_other_transactions_is_retried_then_raised(
    endpoint, name
):
    # The owner's next reservation (Uppy's parallel uploads) updates the same counter: a
    # settlement cancelled by it is tried again, and one that never gets through raises,
    # so that Lambda retries its event: never dropped, never counted twice.
    before, settle, after = SETTLEMENTS[name]
    ledger = make_ledger(endpoint, stored_bytes=2000)
    real = ledger._db
    first, second = new_id(), new_id()
    for upload in (first, second):
        ledger.reserve("alice", upload, 800, 300)
        before(ledger, upload)
    held = used(ledger)["stored_bytes"] // 2
    ledger._db = ConflictingDB(real, conflicts=MAX_CONFLICTS)  # type: ignore[assignment]
    settle(ledger, first)
    ledger._db = ConflictingDB(real, conflicts=100)  # type: ignore[assignment]
    with pytest.raises(QuotaBusy, match=rf"^the quota table's items for upload {second} kept "):
        settle(ledger, second)
    ledger._db = real
    assert used(ledger)["stored_bytes"] == after + held
    settle(ledger, second)  # the event's retry
    settle(ledger, second)  # and once more: counted once
    assert used(ledger)["stored_bytes"] == 2 * after


def test_a_created_event_delivered_again_after_its_deletion_does_not_count_again(endpoint):
    # Stages without verification count S3's events as they come: EventBridge delivers
    # each at least once, in any order.
    ledger = make_ledger(endpoint, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 800, 300)
    ledger.created(upload, 500, "etag-a")
    ledger.deleted(upload)
    ledger.created(upload, 500, "etag-a")  # the first event, again
    assert used(ledger)["stored_bytes"] == 0
    ledger.created(upload, 700, "etag-b")  # new bytes through the same URL
    ledger.created(upload, 700, "etag-b")
    assert used(ledger)["stored_bytes"] == 700
    # The verifier reads the object itself: what it judged is there, whatever its ETag.
    ledger.deleted(upload)
    ledger.landed(upload, 700, "etag-b")
    assert used(ledger)["stored_bytes"] == 700


def test_an_answer_after_connection_close_keeps_the_whole_answer_bound_on_the_next_call():
    # http.client reconnects by itself after "Connection: close", with a plain socket
    # whose timeout bounds each read only: the client reconnects through its own.
    db, stop = dripping_dynamodb(
        first=b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert db.call("GetItem", {}, Budget(60)) == {}
    with pytest.raises(QuotaUnavailable, match=r"unavailable \(ConnectionError\)"):
        db.call("GetItem", {}, Budget(60))
    dripped = stop()
    assert len(dripped) == dynamodb_module.ATTEMPTS
    assert all(sent < len(DRIPPED) for sent in dripped), dripped


class DownAfterCreate:
    """The table answers until S3's upload is created, then no more: the abort's release
    finds it unavailable (or no time left for it)."""

    def __init__(self, real: DynamoDB) -> None:
        self._real, self.down = real, False

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        if self.down:
            raise QuotaUnavailable("the quota table is unavailable (ConnectionError); no URL "
                                   "is issued uncounted; try again shortly")  # fmt: skip
        return self._real.call(operation, payload, budget)


def test_an_abort_s3_did_is_answered_as_done_when_its_release_cannot_run(api, s3, monkeypatch):
    ledger = make_ledger(s3.meta.endpoint_url, stored_bytes=10 * 2**40)
    db = DownAfterCreate(ledger._db)
    ledger._db = db  # type: ignore[assignment]
    assert api.http.get("/put-url").status_code == 200  # the container's services, built
    app_module.services().__dict__["quotas"] = ledger
    created = api.http.post("/s3/multipart", body=json.dumps({"filename": "a.bin"}),
                            headers={"Content-Type": "application/json"}).json_body  # fmt: skip
    db.down = True
    log = io.StringIO()
    monkeypatch.setattr("sys.stdout", log)
    aborted = api.http.delete(f"/s3/multipart/{created['uploadId']}?key={created['key']}")
    assert (aborted.status_code, aborted.json_body) == (200, {})
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    deferred = [json.loads(line) for line in log.getvalue().splitlines() if '"quota"' in line]
    assert deferred == [{"level": "WARNING", "quota": "release-deferred",
                         "reason": "the quota table is unavailable (ConnectionError); no URL "
                                   "is issued uncounted; try again shortly"}]  # fmt: skip
    db.down = False
    assert used(ledger, "ip-127.0.0.1")["uploads_in_flight"] == 1  # held until it expires


class Recording:
    """The IAM actions a ledger's calls need: a transaction needs each item's own."""

    def __init__(self, real: DynamoDB) -> None:
        self._real = real
        self.actions: set[str] = set()

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        if operation == "TransactWriteItems":
            kinds = {next(iter(item)) for item in payload["TransactItems"]}
            self.actions |= {f"dynamodb:{kind}Item" for kind in kinds}
        else:
            self.actions.add(f"dynamodb:{operation}")
        return self._real.call(operation, payload, budget)


def test_each_role_may_do_exactly_what_its_quota_calls_need(endpoint):
    # The API reserves, reports, gives back expired reservations and aborted uploads; the
    # verifier settles what landed, was rejected or deleted. Each role's policy file
    # (make policies) allows those actions and no others.
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=1000)
    api = Recording(ledger._db)
    ledger._db = api  # type: ignore[assignment]
    expired, aborted = new_id(), new_id()
    ledger.reserve("alice", expired, 1000, 300)
    ledger.usage("alice")
    clock.now += 300 + RELEASE_GRACE + 1
    ledger.reserve("alice", aborted, 1000, 300)  # gives the expired one back first
    ledger.release(aborted, "alice")
    rejected, stored, created = new_id(), new_id(), new_id()
    for upload in (rejected, stored, created):
        ledger.reserve("alice", upload, 100, 300)
    verifier = Recording(api._real)
    ledger._db = verifier  # type: ignore[assignment]
    ledger.release(rejected)
    ledger.landed(stored, 100, "etag-a")
    ledger.deleted(stored)
    ledger.created(created, 100, "etag-b")

    def allowed(policy: dict[str, Any], sid: str) -> set[str]:
        (statement,) = [s for s in policy["Statement"] if s["Sid"] == sid]
        return set(statement["Action"])

    assert (
        allowed(api_policy("prod"), "CountQuotas")
        == api.actions
        == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    )
    assert (
        allowed(verifier_policy("prod"), "SettleQuotas")
        == verifier.actions
        == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    )


def test_a_reservation_throttled_on_its_own_items_is_retried_then_busy_never_a_quota(endpoint):
    # DynamoDB reports an item's throttling inside a transaction as a cancellation
    # reason: like a conflict, it is tried again, never taken for a limit reached.
    ledger = make_ledger(endpoint, files_per_day=5)
    real = ledger._db
    ledger._db = ConflictingDB(real, MAX_CONFLICTS, "ThrottlingError")  # type: ignore[assignment]
    ledger.reserve("alice", new_id(), 100, 300)
    assert used(ledger)["files_today"] == 1
    ledger._db = ConflictingDB(real, 100, "ThrottlingError")  # type: ignore[assignment]
    with pytest.raises(QuotaBusy, match="busy with this caller's other requests"):
        ledger.reserve("alice", new_id(), 100, 300)
    ledger._db = ConflictingDB(real, 1, "ValidationError")  # type: ignore[assignment]
    with pytest.raises(QuotaUnavailable) as unknown:
        ledger.reserve("alice", new_id(), 100, 300)
    assert str(unknown.value) == ("the quota table cancelled the reservation "
                                  "(ValidationError); try again shortly")  # fmt: skip
    assert used(ledger)["files_today"] == 1


def test_a_settlement_throttled_on_its_items_backs_off_between_attempts(endpoint):
    ledger = make_ledger(endpoint, stored_bytes=1000)
    upload = new_id()
    ledger.reserve("alice", upload, 800, 300)
    slept: list[float] = []
    ledger._sleep = slept.append
    ledger._db = ConflictingDB(ledger._db, 100, "ThrottlingError")  # type: ignore[assignment]
    with pytest.raises(QuotaBusy):
        ledger.landed(upload, 600, "etag-a")
    assert slept == [0.02, 0.04, 0.06, 0.08, 0.1]


def test_an_operators_override_of_zero_files_a_day_blocks_even_the_first(endpoint):
    ledger = make_ledger(endpoint, files_per_day=5)
    table(ledger, endpoint).put_item(Item={"pk": "q#alice#limits", "files_per_day": 0})
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve("alice", new_id(), 1, 300)
    assert (refused.value.limit, refused.value.allowed, str(refused.value)) == (
        "files_per_day",
        0,
        "quota files_per_day reached: 0 of 0 uploads today; it resets at 2026-12-06T00:00:00Z",
    )
    assert used(ledger)["files_today"] == 0


class ConflictingGiveBacks:
    """Cancels each give-back (of one upload's reservation) MAX_CONFLICTS times, as the
    owner's own parallel requests would, then lets it by."""

    def __init__(self, real: DynamoDB) -> None:
        self._real, self.seen = real, collections.Counter[str]()

    def call(self, operation: str, payload: dict[str, Any], budget: Budget) -> dict[str, Any]:
        first = payload.get("TransactItems", [{}])[0].get("Update", {})
        if ":owner" in first.get("ExpressionAttributeValues", {}):  # a give-back's
            key = first["Key"]["pk"]["S"]
            self.seen[key] += 1
            if self.seen[key] <= MAX_CONFLICTS:
                reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}]
                raise DynamoDBError("TransactionCanceledException", "conflict",
                                    {"CancellationReasons": reasons})  # fmt: skip
        return self._real.call(operation, payload, budget)


def test_fail_open_never_passes_a_caller_whose_bursts_spend_the_budget_in_the_sweep(
    endpoint, monkeypatch
):
    # Conflicts spread over the sweep's give-backs (four back-offs each, each given back
    # at the fifth) until the budget runs out: a 503 all the same, never a URL uncounted.
    now = [0.0]
    monkeypatch.setattr("chalicelib.quotas.ledger.Budget",
                        functools.partial(Budget, clock=lambda: now[0]))  # fmt: skip
    clock = Clock()
    ledger = make_ledger(endpoint, clock, stored_bytes=30)
    for _ in range(30):
        ledger.reserve("alice", new_id(), 1, 300)
    clock.now += 300 + RELEASE_GRACE + 1
    ledger._settings = ledger._settings._replace(quota_fail_open=True)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    ledger._sleep = sleep
    conflicting = ConflictingGiveBacks(ledger._db)
    ledger._db = conflicting  # type: ignore[assignment]
    counters = metrics.begin()
    with pytest.raises(QuotaBusy, match="busy with this caller's other requests"):
        ledger.reserve("alice", new_id(), 30, 300)
    assert counters == {}
    # 0.2 s of back-off per give-back: 19 were given back, and the budget refused the
    # 20th's fifth attempt (4 s spent, and a call's worst case, 6.1 s, would end past 10).
    assert sorted(set(conflicting.seen.values())) == [MAX_CONFLICTS + 1]
    assert len(conflicting.seen) == 20
    assert used(ledger)["uploads_in_flight"] == 30 - 19


@pytest.mark.parametrize(("reason", "passed"), [
    ("TableWriteKeyRangeThroughputExceeded", False),  # one key: the caller's own burst
    ("TableWriteAccountLimitExceeded", True),  # the table: fail-open is for this
])  # fmt: skip
def test_fail_open_passes_a_throttled_table_but_never_a_callers_own_hot_key(
    endpoint, monkeypatch, reason, passed
):
    ledger = make_ledger(endpoint, files_per_day=1)
    ledger._settings = ledger._settings._replace(quota_fail_open=True)
    ledger.limits("alice")  # cached, as after a first request
    real = DynamoDB._send

    def throttled(self: DynamoDB, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if operation != "TransactWriteItems":
            return real(self, operation, body)
        return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                     "message": "Throughput exceeds the current capacity of your table",
                     "ThrottlingReasons": [{"reason": reason, "resource": "arn:..."}]}  # fmt: skip

    monkeypatch.setattr(DynamoDB, "_send", throttled)
    counters = metrics.begin()
    if passed:
        ledger.reserve("alice", new_id(), 1, 300)
        assert counters == {"quota_fail_open": 1}
    else:
        with pytest.raises(QuotaBusy) as busy:
            ledger.reserve("alice", new_id(), 1, 300)
        assert str(busy.value) == (
            "the quota table is busy with this caller's other requests "
            "(ThrottlingException: a hot key); try again shortly"
        )
        assert counters == {}
