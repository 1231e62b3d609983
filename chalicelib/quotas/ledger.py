"""Quotas: how much each principal may upload, counted at signing in DynamoDB and
reconciled with what lands.

Items of the table (one string key, ``pk``; ``expires_at`` is its TTL attribute):

- ``q#<owner>#day#<YYYY-MM-DD>``: ``files`` and ``bytes`` of the URLs issued that day
  (UTC), kept two days;
- ``q#<owner>#stored``: ``bytes`` stored or reserved, and ``pending``, a string set with
  one entry per upload not yet landed: ``<uuid> <bytes> <expiry> <day>``;
- ``q#<owner>#limits``: an operator's override of the stage's limits for one owner
  (``files_per_day``, ``bytes_per_day``, ``stored_bytes``; docs/quotas.md);
- ``u#<uuid>``: each upload's reservation: its owner, day, size and state
  (``reserved``, ``stored`` with the stored object's ETag, or ``released``).

Issuing a URL reserves its size (the declared size, which the URL signs so that S3
enforces it, else the most the URL can store) in one ``TransactWriteItems``: the upload's
item, written only if absent (so a retried call never counts twice), and the two
counters, each updated only if it stays within its limit. DynamoDB's conditions have no
arithmetic, so each compares the counter with a headroom computed here (the limit less
this upload). Parallel requests at the limit are serialised by the transaction: no more
than the limit is ever granted.

What lands replaces its reservation (:meth:`Ledger.landed`); a rejected or aborted upload
gives it back (:meth:`Ledger.release`), a deleted one its stored bytes
(:meth:`Ledger.deleted`). An upload that never arrives is given back when its entry in
``pending`` has expired (RELEASE_GRACE ago) and the owner next needs the room. Each of
these is conditional on the entry still being in ``pending`` (or the item's state and
ETag as read), so events that arrive twice, or race each other, count once; one that
lost a race reads the item again and settles what it finds, and one cancelled by a
concurrent transaction is tried again, or raises (its event is retried): never dropped.

Whatever is stored counts: an upload's item outlives its reservation (``released``), so
that bytes which land after it was given back (a URL used again after a rejection, a
deletion or an abort; an upload whose verdict came after its URL expired) are counted
when they land, and an object replaced through the same URL counts at its new size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from chalicelib.core import metrics
from chalicelib.core.errors import QuotaBusy, QuotaExceeded, QuotaUnavailable
from chalicelib.core.logs import log_quota_fail_open
from chalicelib.core.settings import Settings
from chalicelib.quotas.dynamodb import BUSY, Budget, DynamoDB, DynamoDBError

OPERATION_BUDGET = 10.0  # seconds: a route's quota work, within API Gateway's 29 s
LIMITS_CACHE_SECONDS = 60  # an operator's override is read at most once a minute
MAX_PENDING = 1000  # uploads in flight per owner: the stored item stays far below 400 KB
MAX_CONFLICTS = 4  # transactions cancelled by a concurrent one, retried within the budget
CONFLICT_BACKOFF = 0.02  # seconds, times the attempt
# A transaction's cancellation reasons after which it may succeed if tried again.
RETRY_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
RELEASE_BATCH = 25  # expired entries given back per transaction (3 items each, of 100)
# An entry is given back this long after its URL expired, not at once: S3 accepts a PUT
# that starts before the expiry, and an upload that arrived may still be in its
# verification or malware scan. (Bytes that land later are counted anyway: landed().)
RELEASE_GRACE = 600
DAY_KEEP_SECONDS = 2 * 86400
# A released upload's item is kept while any URL issued for it could still store bytes
# (UPLOAD_URL_EXPIRES is at most 7 days), and two days more.
RELEASED_KEEP_SECONDS = 9 * 86400
LIMIT_NAMES = ("files_per_day", "bytes_per_day", "stored_bytes")
Item = dict[str, Any]  # a DynamoDB item, or a transaction's item, as its JSON API has it


class Limits(NamedTuple):
    files_per_day: int | None
    bytes_per_day: int | None
    stored_bytes: int | None

    def to_response(self) -> dict[str, int | None]:
        return dict(zip(LIMIT_NAMES, self, strict=True))


class Pending(NamedTuple):
    """An upload not landed yet, as its entry in the owner's ``pending`` set."""

    upload_id: str
    size: int
    expires: int
    day: str

    @classmethod
    def parse(cls, entry: str) -> Pending | None:
        parts = entry.split(" ")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]), parts[3])

    def entry(self) -> str:
        return f"{self.upload_id} {self.size} {self.expires} {self.day}"


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class Ledger:
    """Reserves, reconciles and reports one table's quotas."""

    def __init__(self, db: DynamoDB, settings: Settings, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self._db = db
        self._settings = settings
        self._table = settings.quota_table
        self._clock = clock
        self._sleep = sleep
        self._limits: dict[str, tuple[float, Limits]] = {}

    # -- signing ------------------------------------------------------------------------

    def reserve(self, owner: str, upload_id: str, size: int, lifetime: int) -> None:
        """Count one upload of at most ``size`` bytes, whose URL (or multipart upload)
        stops working ``lifetime`` seconds from now; QuotaExceeded if it does not fit.
        When the table cannot answer: QuotaUnavailable (a 503), or with
        UPLOAD_QUOTA_FAIL_OPEN the URL goes out uncounted, with a metric and a log line."""
        try:
            self._reserve(owner, upload_id, size, lifetime)
        except QuotaUnavailable as exc:
            if not self._settings.quota_fail_open or isinstance(exc, QuotaBusy):
                raise
            metrics.add("quota_fail_open")
            log_quota_fail_open(str(exc))

    def _reserve(self, owner: str, upload_id: str, size: int, lifetime: int) -> None:
        budget = Budget(OPERATION_BUDGET)
        limits = self.limits(owner, budget)
        now = int(self._clock())
        day = _day(now)
        for name, allowed in (("bytes_per_day", limits.bytes_per_day),
                              ("stored_bytes", limits.stored_bytes)):  # fmt: skip
            if allowed is not None and size > allowed:  # no wait will make it fit
                found = self._exceeded(name, allowed, 0, now, size)
                raise QuotaExceeded(
                    f"quota {name} is {allowed} bytes, and this upload may store up to "
                    f"{size} bytes: it can never fit; declare a smaller size (an upload "
                    f"without one, a POST policy or a multipart upload reserves the "
                    f"stage's UPLOAD_MAX_BYTES)",
                    name, allowed, 0, found.resets_at, found.retry_after,
                )  # fmt: skip
        if limits.files_per_day is not None and limits.files_per_day < 1:
            # An operator's override of 0 blocks the owner (the day's counter may not
            # exist yet, and the transaction's condition lets a first file through then).
            raise self._exceeded("files_per_day", limits.files_per_day, 0, now)
        pending = Pending(upload_id, size, now + lifetime, day)
        conflicts, released = 0, False
        while True:
            request = self._reservation(owner, pending, limits, now)
            if conflicts == 0 and not released:
                # DynamoDB's own idempotency, for a call retried after a lost answer.
                request["ClientRequestToken"] = upload_id
            try:
                self._db.call("TransactWriteItems", request, budget)
                return
            except DynamoDBError as exc:
                failed, retry = _cancelled(exc)
                if 0 in failed:
                    return  # this very upload is counted already: a retried call
                if not failed and retry:
                    # Another transaction on the same counters at the same moment (or its
                    # item throttled): DynamoDB cancels one of them. Parallel requests end
                    # up serialised here.
                    conflicts += 1
                    if conflicts > MAX_CONFLICTS:
                        raise QuotaBusy(f"{BUSY}; try again shortly") from None
                    self._back_off(budget, conflicts)
                    continue
                if not failed:
                    raise QuotaUnavailable(
                        f"the quota table cancelled the reservation ({_codes(exc)}); "
                        "try again shortly"
                    ) from None
                if not released and self._release_expired(owner, now, budget):
                    released = True
                    continue  # room was held by uploads that never came: try again
                raise self._which(owner, limits, failed, now, size, budget) from None

    def _reservation(self, owner: str, pending: Pending, limits: Limits,
                     now: int) -> dict[str, Any]:  # fmt: skip
        day_conditions, values = [], {":one": _n(1), ":size": _n(pending.size),
                                      ":ttl": _n(_day_end(now) + DAY_KEEP_SECONDS)}  # fmt: skip
        if limits.files_per_day is not None:
            day_conditions.append("(attribute_not_exists(files) OR files <= :files_room)")
            values[":files_room"] = _n(limits.files_per_day - 1)
        if limits.bytes_per_day is not None:
            day_conditions.append("(attribute_not_exists(#bytes) OR #bytes <= :bytes_room)")
            values[":bytes_room"] = _n(limits.bytes_per_day - pending.size)
        stored_values = {":size": _n(pending.size), ":entry": {"SS": [pending.entry()]},
                         ":max_pending": _n(MAX_PENDING)}  # fmt: skip
        stored_condition = "(attribute_not_exists(pending) OR size(pending) < :max_pending)"
        if limits.stored_bytes is not None:
            stored_condition += " AND (attribute_not_exists(#bytes) OR #bytes <= :stored_room)"
            stored_values[":stored_room"] = _n(limits.stored_bytes - pending.size)
        day_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": _s(_day_key(owner, pending.day))},
            "UpdateExpression": "ADD files :one, #bytes :size SET expires_at = :ttl",
            "ExpressionAttributeNames": {"#bytes": "bytes"},
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if day_conditions:
            # Each condition is in parentheses already: DynamoDB refuses redundant ones.
            joined = " AND ".join(day_conditions)
            both = joined if len(day_conditions) == 1 else f"({joined})"
            day_update["ConditionExpression"] = f"attribute_not_exists(pk) OR {both}"
        return {
            "TransactItems": [
                {"Put": {
                    "TableName": self._table,
                    "Item": {"pk": _s(f"u#{pending.upload_id}"), "owner": _s(owner),
                             "day": _s(pending.day), "size": _n(pending.size),
                             "state": _s("reserved"),
                             "expires_at": _n(pending.expires + DAY_KEEP_SECONDS)},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }},
                {"Update": day_update},
                {"Update": {
                    "TableName": self._table,
                    "Key": {"pk": _s(_stored_key(owner))},
                    "UpdateExpression": "ADD #bytes :size, pending :entry",
                    "ConditionExpression": stored_condition,
                    "ExpressionAttributeNames": {"#bytes": "bytes"},
                    "ExpressionAttributeValues": stored_values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }},
            ],
        }  # fmt: skip

    def _which(self, owner: str, limits: Limits, failed: dict[int, dict[str, Any] | None],
               now: int, size: int, budget: Budget) -> QuotaExceeded:  # fmt: skip
        """The QuotaExceeded naming the first limit the reservation broke."""
        if 1 in failed:
            counts = failed[1] or self._get(_day_key(owner, _day(now)), budget) or {}
            files, used = _number(counts, "files"), _number(counts, "bytes")
            if limits.files_per_day is not None and files + 1 > limits.files_per_day:
                return self._exceeded("files_per_day", limits.files_per_day, files, now)
            if limits.bytes_per_day is not None:
                return self._exceeded("bytes_per_day", limits.bytes_per_day, used, now, size)
        stored = failed.get(2) or self._get(_stored_key(owner), budget) or {}
        if len(stored.get("pending", {}).get("SS", [])) >= MAX_PENDING:
            return self._exceeded("uploads_in_flight", MAX_PENDING, MAX_PENDING, now)
        allowed = limits.stored_bytes if limits.stored_bytes is not None else 0
        return self._exceeded("stored_bytes", allowed, _number(stored, "bytes"), now, size)

    def _exceeded(self, limit: str, allowed: int, used: int, now: int,
                  size: int | None = None) -> QuotaExceeded:  # fmt: skip
        daily = limit in ("files_per_day", "bytes_per_day")
        resets = _day_end(now) if daily else None
        what = {"files_per_day": f"{used} of {allowed} uploads today",
                "bytes_per_day": f"{used} of {allowed} bytes today",
                "stored_bytes": f"{used} of {allowed} bytes stored",
                "uploads_in_flight": f"{allowed} uploads not yet finished"}[limit]  # fmt: skip
        ask = "" if size is None else f"; this upload may store up to {size} bytes"
        when = (f"; it resets at {_iso(resets)}" if resets is not None else
                "; room comes back as uploads are deleted, expire or are rejected")  # fmt: skip
        return QuotaExceeded(f"quota {limit} reached: {what}{ask}{when}", limit, allowed,
                             used, None if resets is None else _iso(resets),
                             max(1, resets - now) if resets is not None else 3600)  # fmt: skip

    # -- what landed --------------------------------------------------------------------

    def landed(self, upload_id: str, stored: int, etag: str = "") -> None:
        """The upload's object (``etag``) is stored, and verified where verification is
        on: it counts at its stored size. A reservation becomes that size; bytes that land
        after the reservation was given back are counted anew; an object replaced through
        the same URL (another ETag) counts at its new size instead of the old."""
        self._settle(upload_id, partial(self._landing, upload_id, stored, etag, False))

    def created(self, upload_id: str, stored: int, etag: str = "") -> None:
        """S3's "Object Created" event, on a stage without verification: as
        :meth:`landed`, except that the object whose deletion was counted last (its ETag
        is kept) is that deletion's own object, its event delivered again (EventBridge
        delivers at least once), not new bytes. (The same bytes stored again through the
        same URL after a deletion look the same: docs/quotas.md.)"""
        self._settle(upload_id, partial(self._landing, upload_id, stored, etag, True))

    def _landing(self, upload_id: str, stored: int, etag: str, redelivery: bool,
                 item: Item | None) -> list[Item] | None:  # fmt: skip
        if item is None:
            return None  # never counted: quotas were turned on since
        state, owner, now = _text(item, "state"), _text(item, "owner"), int(self._clock())
        names = {"#state": "state", "#size": "size", "#etag": "etag"}
        values = {":stored": _s("stored"), ":bytes": _n(stored), ":etag": _s(etag)}
        if state == "reserved":
            _, pending = _owner_and_pending(upload_id, item)
            delta, day = stored - pending.size, pending.day
            counter = self._take_pending(owner, pending, delta)
            condition = "#state = :reserved"
            values[":reserved"] = _s("reserved")
        elif state == "released":
            if redelivery and etag and _text(item, "deleted_etag") == etag:
                return None  # the deleted object's own event, again
            delta, day = stored, _text(item, "day")
            counter = self._add_stored(owner, delta)
            condition = "#state = :released AND " + _same_etag(item, values)
            values[":released"] = _s("released")
        elif state == "stored" and _text(item, "etag") != etag:
            delta, day = stored - _number(item, "size"), _text(item, "day")
            counter = self._add_stored(owner, delta)
            condition = "#state = :stored AND " + _same_etag(item, values)
        else:
            return None  # counted already: the same object's event, again
        return [
            {"Update": {
                "TableName": self._table, "Key": {"pk": _s(f"u#{upload_id}")},
                "UpdateExpression": "SET #state = :stored, #size = :bytes, #etag = :etag "
                                    "REMOVE expires_at",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values}},
            counter,
            self._adjust_day(owner, day, delta, now),
        ]  # fmt: skip

    def release(self, upload_id: str, owner: str | None = None,
                seconds: float = OPERATION_BUDGET) -> None:  # fmt: skip
        """The upload was rejected, or aborted by ``owner``: its reservation is given back
        whole, within ``seconds`` (at most OPERATION_BUDGET)."""
        budget = Budget(min(seconds, OPERATION_BUDGET))
        item = self._get(f"u#{upload_id}", budget)
        if item is None or _text(item, "state") != "reserved":
            return
        if owner is not None and _text(item, "owner") != owner:
            return  # never another's
        holder, pending = _owner_and_pending(upload_id, item)
        self._give_back(holder, pending, budget)

    def deleted(self, upload_id: str) -> None:
        """A stored upload was deleted (its unclaimed days ran out, or an operator):
        its bytes leave the owner's stored total."""
        self._settle(upload_id, partial(self._deletion, upload_id))

    def _deletion(self, upload_id: str, item: Item | None) -> list[Item] | None:
        if item is None or _text(item, "state") != "stored":
            return None
        values = {":stored": _s("stored"), ":released": _s("released"),
                  ":ttl": _n(int(self._clock()) + RELEASED_KEEP_SECONDS),
                  ":gone": _s(_text(item, "etag"))}  # fmt: skip
        # The same object as read: a replacement that landed meanwhile has another size.
        condition = "#state = :stored AND " + _same_etag(item, values)
        return [
            {"Update": {
                "TableName": self._table, "Key": {"pk": _s(f"u#{upload_id}")},
                "UpdateExpression": "SET #state = :released, expires_at = :ttl, "
                                    "deleted_etag = :gone",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#state": "state", "#etag": "etag"},
                "ExpressionAttributeValues": values}},
            self._add_stored(_text(item, "owner"), -_number(item, "size")),
        ]  # fmt: skip

    def _settle(self, upload_id: str, plan: Callable[[Item | None], list[Item] | None]) -> None:
        """Read the upload's item and write what ``plan`` makes of it (None:
        nothing to do). A failed condition means that another settlement of the same
        upload came between the read and the write: the item is read again and planned
        anew. A transaction cancelled by a concurrent one (the owner's next reservation
        on the same counter) is tried again after a back-off. After MAX_CONFLICTS retries,
        QuotaBusy: the event's handler fails, and its retry settles it; never dropped."""
        budget = Budget(OPERATION_BUDGET)
        for attempt in range(1, MAX_CONFLICTS + 2):
            items = plan(self._get(f"u#{upload_id}", budget))
            if items is None:
                return
            try:
                self._db.call("TransactWriteItems", {"TransactItems": items}, budget)
                return
            except DynamoDBError as exc:
                failed, retry = _cancelled(exc)
                if retry and not failed:
                    self._back_off(budget, attempt)
        raise QuotaBusy(
            f"the quota table's items for upload {upload_id} kept changing while "
            f"they were settled ({MAX_CONFLICTS + 1} attempts); try again shortly"
        )

    # -- reading ------------------------------------------------------------------------

    def limits(self, owner: str, budget: Budget | None = None) -> Limits:
        """The stage's limits, with the owner's override from the table (cached a minute)."""
        now = self._clock()
        cached = self._limits.get(owner)
        if cached is not None and cached[0] > now:
            return cached[1]
        stage = Limits(self._settings.quota_files_per_day, self._settings.quota_bytes_per_day,
                       self._settings.quota_stored_bytes)  # fmt: skip
        item = self._get(_limits_key(owner), budget or Budget(OPERATION_BUDGET)) or {}
        found = Limits(*(_number(item, name) if name in item else getattr(stage, name)
                         for name in LIMIT_NAMES))  # fmt: skip
        if len(self._limits) > 10_000:
            self._limits.clear()
        self._limits[owner] = (now + LIMITS_CACHE_SECONDS, found)
        return found

    def usage(self, owner: str) -> dict[str, Any]:
        """GET /quota: the owner's limits, what it has used, and when the day resets."""
        budget = Budget(OPERATION_BUDGET)
        limits = self.limits(owner, budget)
        now = int(self._clock())
        keys = [_day_key(owner, _day(now)), _stored_key(owner)]
        answer = self._db.call("BatchGetItem", {"RequestItems": {self._table: {
            "Keys": [{"pk": _s(k)} for k in keys], "ConsistentRead": True}}}, budget)  # fmt: skip
        found = {_text(i, "pk"): i for i in answer.get("Responses", {}).get(self._table, [])}
        today, stored = found.get(keys[0], {}), found.get(keys[1], {})
        return {
            "enabled": True,
            "limits": limits.to_response(),
            "used": {"files_today": _number(today, "files"),
                     "bytes_today": _number(today, "bytes"),
                     "stored_bytes": _number(stored, "bytes"),
                     "uploads_in_flight": len(stored.get("pending", {}).get("SS", []))},
            "day": _day(now),
            "resets_at": _iso(_day_end(now)),
        }  # fmt: skip

    # -- giving back --------------------------------------------------------------------

    def _release_expired(self, owner: str, now: int, budget: Budget) -> bool:
        """Give back the owner's reservations whose URLs expired unused (RELEASE_GRACE
        ago), up to RELEASE_BATCH of them; whether any."""
        stored = self._get(_stored_key(owner), budget) or {}
        expired = [p for p in map(Pending.parse, stored.get("pending", {}).get("SS", []))
                   if p is not None and p.expires + RELEASE_GRACE < now]  # fmt: skip
        for pending in expired[:RELEASE_BATCH]:  # one transaction each: one cancels only itself
            self._give_back(owner, pending, budget)
        return bool(expired)

    def _give_back(self, owner: str, pending: Pending, budget: Budget) -> None:
        """Take ``pending`` out of the owner's set, with its bytes, and mark its upload
        released (kept RELEASED_KEEP_SECONDS, so that bytes its URL stores later count).
        The upload's item may be gone (DynamoDB's TTL deletes a reservation two days after
        its URL expired); one that is no longer reserved while its entry is still there
        (a table edited by hand) leaves the entry to be dropped alone."""
        now = int(self._clock())
        items = [
            {"Update": {
                "TableName": self._table, "Key": {"pk": _s(f"u#{pending.upload_id}")},
                "UpdateExpression": "SET #state = :released, expires_at = :ttl, "
                                    "#owner = :owner, #day = :day, #size = :size",
                "ConditionExpression": "attribute_not_exists(pk) OR #state = :reserved",
                "ExpressionAttributeNames": {"#state": "state", "#owner": "owner",
                                             "#day": "day", "#size": "size"},
                "ExpressionAttributeValues": {
                    ":released": _s("released"), ":reserved": _s("reserved"),
                    ":ttl": _n(now + RELEASED_KEEP_SECONDS), ":owner": _s(owner),
                    ":day": _s(pending.day),
                    ":size": _n(pending.size)}}},
            self._take_pending(owner, pending, -pending.size),
            self._adjust_day(owner, pending.day, -pending.size, now),
        ]  # fmt: skip
        entry = 1  # the index of the entry's update in the transaction
        for attempt in range(1, MAX_CONFLICTS + 2):
            try:
                self._db.call("TransactWriteItems", {"TransactItems": items}, budget)
                return
            except DynamoDBError as exc:
                failed, retry = _cancelled(exc)
                if entry in failed:
                    return  # its entry is gone: landed or given back already
                if entry and 0 in failed:
                    items, entry = items[1:], 0  # settled otherwise: drop the stray entry alone
                elif retry:
                    self._back_off(budget, attempt)
        raise QuotaBusy(
            f"the quota table's items for upload {pending.upload_id} kept changing "
            f"while its reservation was given back; try again shortly"
        )

    def _take_pending(self, owner: str, pending: Pending, delta: int) -> dict[str, Any]:
        """Remove ``pending`` from the owner's set and add ``delta`` to its bytes, only if
        the entry is still there: whoever takes it first counts, once."""
        return {"Update": {
            "TableName": self._table, "Key": {"pk": _s(_stored_key(owner))},
            "UpdateExpression": "ADD #bytes :delta DELETE pending :entry",
            "ConditionExpression": "contains(pending, :text)",
            "ExpressionAttributeNames": {"#bytes": "bytes"},
            "ExpressionAttributeValues": {":delta": _n(delta), ":entry": {"SS": [pending.entry()]},
                                          ":text": _s(pending.entry())}}}  # fmt: skip

    def _add_stored(self, owner: str, delta: int) -> dict[str, Any]:
        """Add ``delta`` to the owner's stored total (bytes that landed without a pending
        entry, or left)."""
        return {"Update": {
            "TableName": self._table, "Key": {"pk": _s(_stored_key(owner))},
            "UpdateExpression": "ADD #bytes :delta",
            "ExpressionAttributeNames": {"#bytes": "bytes"},
            "ExpressionAttributeValues": {":delta": _n(delta)}}}  # fmt: skip

    def _adjust_day(self, owner: str, day: str, delta: int, now: int) -> dict[str, Any]:
        ttl = _day_end(now) + DAY_KEEP_SECONDS
        return {"Update": {
            "TableName": self._table, "Key": {"pk": _s(_day_key(owner, day))},
            "UpdateExpression": "ADD #bytes :delta "
                                "SET expires_at = if_not_exists(expires_at, :ttl)",
            "ExpressionAttributeNames": {"#bytes": "bytes"},
            "ExpressionAttributeValues": {":delta": _n(delta), ":ttl": _n(ttl)}}}  # fmt: skip

    def _back_off(self, budget: Budget, attempt: int) -> None:
        """Wait before trying a transaction again that a concurrent one cancelled (or its
        item's throttling); the operation is busy from then on (:class:`Budget`)."""
        budget.busy = True
        self._sleep(CONFLICT_BACKOFF * attempt)

    def _get(self, key: str, budget: Budget) -> dict[str, Any] | None:
        answer = self._db.call("GetItem", {"TableName": self._table, "Key": {"pk": _s(key)},
                                           "ConsistentRead": True}, budget)  # fmt: skip
        item = answer.get("Item")
        return item if isinstance(item, dict) else None


def _cancelled(exc: DynamoDBError) -> tuple[dict[int, dict[str, Any] | None], bool]:
    """The transaction's items whose condition failed (their index and old item), and
    whether it may succeed if tried again: cancelled by a concurrent transaction, or
    throttled on one of its items (DynamoDB says so in the reasons, not as an error)."""
    if exc.code != "TransactionCanceledException":
        raise exc
    reasons = _reasons(exc)
    failed = {i: r.get("Item") for i, r in enumerate(reasons)
              if r.get("Code") == "ConditionalCheckFailed"}  # fmt: skip
    return failed, any(r.get("Code") in RETRY_REASONS for r in reasons)


def _reasons(exc: DynamoDBError) -> list[dict[str, Any]]:
    found = exc.body.get("CancellationReasons")
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _codes(exc: DynamoDBError) -> str:
    """A cancelled transaction's reasons, other than None, for a message (bounded)."""
    codes = sorted({str(r.get("Code"))[:40] for r in _reasons(exc)} - {"None"})
    return ", ".join(codes[:5]) or "no reason given"


def _owner_and_pending(upload_id: str, item: dict[str, Any]) -> tuple[str, Pending]:
    expires = _number(item, "expires_at") - DAY_KEEP_SECONDS
    return _text(item, "owner"), Pending(upload_id, _number(item, "size"), expires,
                                         _text(item, "day"))  # fmt: skip


def _same_etag(item: dict[str, Any], values: dict[str, Any]) -> str:
    """A condition that the item's ``etag`` (``#etag``) is still the one read (items
    stored before ETags were recorded have none); adds its value to ``values``."""
    if "etag" not in item:
        return "attribute_not_exists(#etag)"
    values[":old_etag"] = _s(_text(item, "etag"))
    return "#etag = :old_etag"


def _number(item: dict[str, Any], name: str) -> int:
    try:
        return int(item[name]["N"])
    except (KeyError, TypeError, ValueError):
        return 0


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name, {})
    return str(value.get("S", "")) if isinstance(value, dict) else ""


def _day(now: int) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def _day_end(now: int) -> int:
    start = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((start + timedelta(days=1)).timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_key(owner: str, day: str) -> str:
    return f"q#{owner}#day#{day}"


def _stored_key(owner: str) -> str:
    return f"q#{owner}#stored"


def _limits_key(owner: str) -> str:
    return f"q#{owner}#limits"
