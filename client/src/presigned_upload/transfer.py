"""Moving the bytes: one presigned PUT for a small file, parallel parts for a large one.

The bytes go straight from the file to S3: each request body reads its region of the
file with ``os.pread``, so no part is held in memory and the threads share one file
descriptor. Every request is retried with exponential backoff and jitter; a part whose
URL has expired (403) gets a fresh one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from presigned_upload.api import Api, ApiError
from presigned_upload.limits import MAX_BATCH
from presigned_upload.parts import DEFAULT_PART_SIZE, DEFAULT_THRESHOLD, Part, part_size, plan
from presigned_upload.state import ResumeState, StateStore

T = TypeVar("T")
# What GET /uploads/{uuid} says of an upload whose bytes are in S3.
LANDED = ("uploaded", "scanning", "verified")
READ_BLOCK = 1024 * 1024


class TransferError(Exception):
    """An upload failed for good (after its retries); the message says what happened."""


class _UploadGone(Exception):
    """The multipart upload being resumed is no longer in S3."""


class Interrupted(Exception):
    """Ctrl-C: the upload stopped; ``resumable`` tells whether ``--resume`` continues it."""

    def __init__(self, resumable: bool) -> None:
        super().__init__("interrupted")
        self.resumable = resumable


@dataclass(frozen=True)
class Options:
    concurrency: int = 8
    part_size: int = DEFAULT_PART_SIZE
    threshold: int = DEFAULT_THRESHOLD
    retries: int = 5
    backoff: float = 0.5
    # What S3 checks each PUT and part against: "sha256" (stored with the object, too),
    # "md5", or "none". "auto" is SHA-256 (see resolve_checksum).
    checksum: str = "auto"
    content_type: str | None = None
    abort_on_interrupt: bool = False
    # The option's name in 1.0: "always" (= checksum "md5"), "never" ("none") or "auto".
    md5: str | None = None

    @property
    def sent_checksum(self) -> str:
        """The checksum each request carries: "sha256", "md5" or "none"."""
        if self.md5 is not None:
            return resolve_checksum(OLD_MD5_CHOICES.get(self.md5, self.md5))
        return resolve_checksum(self.checksum)


class Retryable(Exception):
    """A failure worth another attempt: the network, S3 busy, or an expired URL."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class FileRegion:
    """Bytes ``offset .. offset + size`` of an open file, as a request body with a known
    length (so requests sends Content-Length, which presigned PUTs need, not chunks)."""

    def __init__(self, fd: int, offset: int, size: int, on_read: Callable[[int], None]) -> None:
        self._fd, self._offset, self._size, self._on_read = fd, offset, size, on_read
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8 KiB at a time; answering with up to 1 MiB (it sends
        # whatever it gets) costs 8 reads and sends per 8 MiB part instead of 1,024.
        left = self._size - self._pos
        n = left if n is None or n < 0 else min(max(n, READ_BLOCK), left)
        data = os.pread(self._fd, n, self._offset + self._pos) if n else b""
        self._pos += len(data)
        self._on_read(len(data))
        return data


CHECKSUMS = ("auto", "sha256", "md5", "none")
OLD_MD5_CHOICES = {"auto": "auto", "always": "md5", "never": "none"}


def resolve_checksum(choice: str) -> str:
    """The checksum an upload sends: ``auto`` is SHA-256, which S3 verifies and stores
    (so the status route can show it), which browsers compute too, and which hashlib
    computes faster than MD5. The CLI cannot ask a server whether it requires one before
    it starts an upload, so ``auto`` does not wait to be told."""
    if choice not in CHECKSUMS:
        raise ValueError(f"checksum {choice!r}; allowed: {', '.join(CHECKSUMS)}")
    return "sha256" if choice == "auto" else choice


def digest_of(algorithm: str, fd: int, offset: int, size: int) -> bytes:
    """The ``sha256`` or ``md5`` digest of bytes ``offset .. offset + size`` of a file,
    read 1 MiB at a time: a part is never held in memory whole."""
    digest = hashlib.new(algorithm)
    for start in range(offset, offset + size, READ_BLOCK):
        digest.update(os.pread(fd, min(READ_BLOCK, offset + size - start), start))
    return digest.digest()


def md5_of(fd: int, offset: int, size: int) -> bytes:
    return digest_of("md5", fd, offset, size)


def composite_sha256(digests: list[bytes]) -> str:
    """S3's checksum of a multipart object whose parts carried SHA-256s: the SHA-256 of
    the parts' digests, base64, then ``-<parts>``."""
    joined = hashlib.sha256(b"".join(digests)).digest()
    return f"{base64.b64encode(joined).decode()}-{len(digests)}"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def content_type_of(path: Path, given: str | None) -> str:
    return given or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def with_retries(
    attempt: Callable[[bool], T],
    retries: int,
    backoff: float,
    stop: threading.Event,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """``attempt(expired)`` up to ``1 + retries`` times while it raises Retryable, waiting
    ``backoff * 2**n`` seconds (at most 20, with jitter) in between. ``expired`` tells the
    attempt that the previous one found its URL expired."""
    expired = False
    for n in range(retries + 1):
        try:
            return attempt(expired)
        except Retryable as exc:
            if n == retries or stop.is_set():
                raise TransferError(f"{exc} (gave up after {n + 1} attempts)") from exc
            expired = exc.expired
            sleep(min(backoff * 2**n, 20) * random.uniform(0.5, 1))  # noqa: S311 (jitter)
    raise AssertionError("unreachable")


def put(
    session: requests.Session, url: str, body: FileRegion, headers: dict[str, str]
) -> tuple[str, str | None]:
    """PUT ``body`` to a presigned URL: its ETag, and the SHA-256 S3 says it stored (or
    None); else Retryable/TransferError."""
    try:
        response = session.put(url, data=body, headers=headers, timeout=(5, 120))
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise Retryable(f"network error: {type(exc).__name__}") from exc
    if response.status_code == 200:
        return response.headers["ETag"], response.headers.get("x-amz-checksum-sha256")
    code = _s3_code(response.text)
    if response.status_code >= 500 or response.status_code == 429:
        raise Retryable(f"S3 answered {response.status_code} {code}")
    if response.status_code == 403 and code in ("AccessDenied", "RequestTimeTooSkewed"):
        raise Retryable(f"S3 answered 403 {code} (URL expired?)", expired=True)
    raise TransferError(f"S3 refused the upload: {response.status_code} {code}")


def _confirmed(stored: dict[str, str], local: dict[str, str] | None) -> dict[str, str]:
    """The checksum S3 says it stored, after checking it against the one computed here
    (when one was: S3 also stores its own CRC for an upload sent without SHA-256)."""
    if local is not None and stored.get("algorithm") == "SHA256" and stored != local:
        raise TransferError(
            f"S3 stored checksum {stored.get('value')!r}, not this file's {local['value']!r}"
        )
    return stored


def _full_object(digest: bytes) -> dict[str, str]:
    return {"algorithm": "SHA256", "value": b64(digest), "type": "FULL_OBJECT"}


def _composite(digests: list[bytes]) -> dict[str, str]:
    return {"algorithm": "SHA256", "value": composite_sha256(digests), "type": "COMPOSITE"}


def _s3_code(xml: str) -> str:
    start = xml.find("<Code>")
    return xml[start + 6 : xml.find("</Code>")] if start >= 0 else ""


class Uploader:
    """Uploads one file through the API; ``progress(n)`` is called as bytes go out
    (negative when a failed attempt's bytes are taken back)."""

    def __init__(
        self,
        api: Api | str,
        *,
        token: str | None = None,
        session: requests.Session | None = None,
        options: Options | None = None,
        store: StateStore | None = None,
        progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        """``api`` is the API's base URL (``token`` is then its Authorization header), or
        an :class:`Api`. ``session`` is shared by the API calls and the uploads to S3."""
        self._session = session or (api.session if isinstance(api, Api) else requests.Session())
        self._api = api if isinstance(api, Api) else Api(api, self._session, token)
        self._options = options or Options()
        self._store = store or StateStore()
        self._progress = progress
        self._stop = threading.Event()

    def upload(self, path: Path | str, resume: bool = False) -> dict[str, Any]:
        """Upload one file; ``resume`` continues its interrupted multipart upload. The
        result: ``{mode, UUID, key, size, etag, parts[, resumed_parts]}``."""
        path = Path(path)
        size = path.stat().st_size
        fd = os.open(path, os.O_RDONLY)
        try:
            if size <= self._options.threshold and not resume:
                return self._single(path, fd, size)
            return self._multipart(path, fd, size, resume)
        finally:
            os.close(fd)

    # -- one PUT -------------------------------------------------------------------------

    def _single(self, path: Path, fd: int, size: int) -> dict[str, Any]:
        params = {
            "filename": path.name,
            "content_type": content_type_of(path, self._options.content_type),
            "size": str(size),
        }
        checksum = self._options.sent_checksum
        digest = b""
        if checksum != "none":
            digest = digest_of(checksum, fd, 0, size)
            params[checksum] = b64(digest)
        ticket = self._api.put_url(params)

        def attempt(expired: bool) -> tuple[str, str | None]:
            if expired:
                raise TransferError("the upload URL expired; run the upload again")
            return self._counted_put(ticket["PUT_URL"], fd, Part(1, 0, size), ticket["headers"])

        etag, stored = with_retries(
            attempt, self._options.retries, self._options.backoff, self._stop
        )
        confirmed = None
        if stored is not None:  # S3 answers with the SHA-256 it stored, when it stored one
            confirmed = _confirmed(
                {"algorithm": "SHA256", "value": stored, "type": "FULL_OBJECT"},
                _full_object(digest) if checksum == "sha256" else None,
            )
        return {"mode": "single", "UUID": ticket["UUID"], "key": ticket["key"], "size": size,
                "etag": etag, "parts": 1, "checksum": confirmed}  # fmt: skip

    # -- multipart -----------------------------------------------------------------------

    def _multipart(self, path: Path, fd: int, size: int, resume: bool) -> dict[str, Any]:
        state = self._store.load(path, api=self._api.base_url) if resume else None
        if resume and state is None:
            raise TransferError(f"no interrupted upload of {path} to resume")
        if state is None:
            self._abandon_previous(path)
            state = self._create(path, size)
        parts = plan(size, state.part_size)
        digests: dict[int, bytes] = {}  # each part's checksum, as sent or as verified
        try:
            done = self._verified_parts(fd, state, parts, digests) if resume else {}
        except _UploadGone:
            # Completed while the answer was lost (or by a run interrupted then), or gone.
            found = self._stored(state, size)
            self._store.delete(path)
            return {"mode": "multipart", "UUID": state.uuid, "key": state.key, "size": size,
                    "etag": found.get("etag"), "parts": len(parts),
                    "resumed_parts": len(parts), "checksum": found.get("checksum"),
                    "already_complete": True}  # fmt: skip
        self._progress(sum(p.size for p in parts if p.number in done))
        todo = [p for p in parts if p.number not in done]
        try:
            done.update(self._upload_parts(fd, state, todo, digests))
        except KeyboardInterrupt:
            self._stop.set()
            if self._options.abort_on_interrupt:
                self._api.abort(state.key, state.upload_id)
                self._store.delete(path)
                raise Interrupted(resumable=False) from None
            raise Interrupted(resumable=True) from None
        listed = [{"PartNumber": n, "ETag": done[n]} for n in sorted(done)]
        try:
            answer = self._complete(state, listed, size)
        except KeyboardInterrupt:  # the completion may or may not have happened: resume tells
            self._stop.set()
            raise Interrupted(resumable=True) from None
        self._store.delete(path)
        local = None
        if state.checksum == "sha256":
            local = _composite([digests[n] for n in sorted(done)])
        stored = answer.get("checksum")
        return {"mode": "multipart", "UUID": state.uuid, "key": state.key, "size": size,
                "etag": answer.get("etag"), "parts": len(parts),
                "resumed_parts": len(parts) - len(todo),
                "checksum": _confirmed(stored, local) if stored else None}  # fmt: skip

    def _complete(
        self, state: ResumeState, parts: list[dict[str, Any]], size: int
    ) -> dict[str, Any]:
        """Complete the upload; the answer's ``etag`` and ``checksum``. If the answer is
        lost (a timeout, a 503), S3 may have completed it all the same: then the object
        is there and the upload id is gone."""
        try:
            return self._api.complete(state.key, state.upload_id, parts)
        except ApiError as exc:
            # 409: a retry raced the first completion (S3's ConditionalRequestConflict),
            # which may have stored the object all the same.
            if exc.status not in (404, 409, 503, 504):
                raise
            status = self._api.status(state.uuid)
            # "verified" too: where the service checks uploads, it may have done so by now.
            if status.get("status") in LANDED and status.get("size") == size:
                return status
            raise

    def _stored(self, state: ResumeState, size: int) -> dict[str, Any]:
        """The status of an upload whose multipart upload is gone, if it was completed
        with this file's size; else TransferError saying what became of it."""
        try:
            status = self._api.status(state.uuid)
        except ApiError as exc:
            if exc.status != 404:
                raise
            status = {}
        if status.get("status") == "rejected":
            raise TransferError(
                f"the upload {state.uuid} was completed, then rejected: {status.get('reason')}"
            )
        if status.get("status") in LANDED and status.get("size") == size:
            return status
        raise TransferError(
            "the interrupted upload no longer exists (aborted or expired) and nothing was "
            "stored; upload again without --resume"
        )

    def _create(self, path: Path, size: int) -> ResumeState:
        checksum = self._options.sent_checksum
        body: dict[str, Any] = {
            "filename": path.name,
            "type": content_type_of(path, self._options.content_type),
            "size": size,
        }
        if checksum == "sha256":
            body["checksum"] = "sha256"  # S3 then demands, checks and stores it per part
        created = self._api.create_multipart(body)
        state = ResumeState.for_file(
            path, self._api.base_url, created["key"], created["uploadId"], created["UUID"],
            part_size(size, self._options.part_size), checksum,
        )  # fmt: skip
        self._store.save(path, state)
        return state

    def _abandon_previous(self, path: Path) -> None:
        """An interrupted upload of this file that is not being resumed: abort it, so its
        parts do not wait for the bucket's lifecycle rule."""
        old = self._store.load(path, check_file=False)
        if old is not None:
            with contextlib.suppress(ApiError):  # already gone
                self._api.abort(old.key, old.upload_id)
            self._store.delete(path)

    def _verified_parts(
        self, fd: int, state: ResumeState, parts: list[Part], digests: dict[int, bytes]
    ) -> dict[int, str]:
        """The parts S3 already holds whose stored SHA-256 (an upload with checksums) or
        else ETag (an MD5) equals that of our bytes at that place. With SHA-256 parts,
        the local digests are put in ``digests``."""
        try:
            listed = self._api.list_parts(state.key, state.upload_id)
        except ApiError as exc:
            if exc.status == 404:
                raise _UploadGone from exc
            raise
        by_number = {p.number: p for p in parts}
        good: dict[int, str] = {}
        for item in listed:
            part = by_number.get(item["PartNumber"])
            if part is None or item["Size"] != part.size:
                continue
            stored = item.get("ChecksumSHA256")
            if state.checksum == "sha256":
                digests[part.number] = digest_of("sha256", fd, part.offset, part.size)
            if stored is not None:
                same = state.checksum == "sha256" and stored == b64(digests[part.number])
            else:  # an S3 that stores no part checksums (moto): its ETag, an MD5
                same = item["ETag"] == f'"{md5_of(fd, part.offset, part.size).hex()}"'
            if same:
                good[part.number] = item["ETag"]
        return good

    def _upload_parts(
        self, fd: int, state: ResumeState, todo: list[Part], digests: dict[int, bytes]
    ) -> dict[int, str]:
        """Upload ``todo`` with ``concurrency`` daemon threads: Ctrl-C in the main thread
        stops at once, and whatever is half sent is simply sent again on resume."""
        urls = self._presigned(state, todo)
        work: queue.Queue[Part] = queue.Queue()
        for part in todo:
            work.put(part)
        results: queue.Queue[tuple[Part, str | BaseException]] = queue.Queue()

        def worker() -> None:
            while not self._stop.is_set():
                try:
                    part = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    etag = self._part(fd, state, part, digests, urls.get(part.number))
                    results.put((part, etag))
                except BaseException as exc:  # reported to the main thread
                    results.put((part, exc))

        for _ in range(min(self._options.concurrency, len(todo))):
            threading.Thread(target=worker, daemon=True).start()
        done: dict[int, str] = {}
        while len(done) < len(todo):
            try:
                part, outcome = results.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(outcome, BaseException):
                self._stop.set()
                raise TransferError(f"part {part.number}: {outcome}") from outcome
            done[part.number] = outcome
        return done

    def _presigned(self, state: ResumeState, todo: list[Part]) -> dict[int, str]:
        """Part URLs signed ahead, 100 per API call, when parts carry no checksum (a
        signed checksum needs the part's bytes first, so those parts are signed one by
        one)."""
        if state.checksum != "none":
            return {}
        numbers = [p.number for p in todo]
        urls: dict[int, str] = {}
        for start in range(0, len(numbers), MAX_BATCH):
            urls.update(
                self._api.batch_urls(state.key, state.upload_id, numbers[start : start + MAX_BATCH])
            )
        return urls

    def _part(
        self,
        fd: int,
        state: ResumeState,
        part: Part,
        digests: dict[int, bytes],
        url: str | None = None,
    ) -> str:
        checksums: dict[str, str] = {}
        if state.checksum != "none":
            digest = digest_of(state.checksum, fd, part.offset, part.size)
            digests[part.number] = digest
            checksums[state.checksum] = b64(digest)
        ticket: dict[str, Any] = {"url": url, "headers": {}} if url else {}

        def attempt(expired: bool) -> str:
            if expired or not ticket:  # an expired URL is signed again, on its own
                ticket.update(
                    self._api.part_url(
                        state.key, state.upload_id, part.number, checksums, part.size
                    )
                )
            return self._counted_put(ticket["url"], fd, part, ticket.get("headers", {}))[0]

        return with_retries(attempt, self._options.retries, self._options.backoff, self._stop)

    def _counted_put(
        self, url: str, fd: int, part: Part, headers: dict[str, str]
    ) -> tuple[str, str | None]:
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            self._progress(n)

        try:
            return put(self._session, url, FileRegion(fd, part.offset, part.size, count), headers)
        except BaseException:
            self._progress(-sent)  # those bytes will be sent again, or never
            raise
