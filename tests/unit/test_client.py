"""The client's pure parts: part arithmetic, retries, file regions and resume state."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import asdict, replace

import pytest
import requests

from presigned_upload.api import Api, ApiError
from presigned_upload.cli import parser
from presigned_upload.parts import Part, part_size, plan
from presigned_upload.state import ResumeState, StateStore
from presigned_upload.transfer import (
    FileRegion,
    Options,
    Retryable,
    TransferError,
    composite_sha256,
    digest_of,
    resolve_checksum,
    with_retries,
)

MiB = 1024**2
GiB = 1024**3


@pytest.mark.parametrize(
    ("file_size", "preferred", "expected"),
    [(0, 8 * MiB, 8 * MiB), (1, 1, 5 * MiB), (100 * GiB, 8 * MiB, 11 * MiB),
     (10_000 * 8 * MiB, 8 * MiB, 8 * MiB), (10_000 * 8 * MiB + 1, 8 * MiB, 9 * MiB),
     (5 * 1024 * GiB, 8 * MiB, 525 * MiB)],
)  # fmt: skip
def test_part_size_keeps_every_file_within_10000_parts(file_size, preferred, expected):
    size = part_size(file_size, preferred)
    assert size == expected
    assert len(plan(file_size, size)) <= 10_000


def test_a_file_bigger_than_s3s_largest_object_is_refused():
    with pytest.raises(ValueError, match="cannot be one S3 object"):
        part_size(5 * 1024 * GiB + 1)


def test_plan_covers_the_file_exactly_once():
    assert plan(11 * MiB + 3, 5 * MiB) == [
        Part(1, 0, 5 * MiB),
        Part(2, 5 * MiB, 5 * MiB),
        Part(3, 10 * MiB, MiB + 3),
    ]
    assert plan(0, 5 * MiB) == [Part(1, 0, 0)]


def test_retries_back_off_exponentially_then_give_up():
    waits: list[float] = []
    calls: list[bool] = []

    def attempt(expired: bool) -> str:
        calls.append(expired)
        raise Retryable("S3 answered 503 SlowDown", expired=len(calls) == 2)

    with pytest.raises(TransferError) as exc:
        with_retries(attempt, retries=3, backoff=1.0, stop=threading.Event(), sleep=waits.append)
    assert str(exc.value) == "S3 answered 503 SlowDown (gave up after 4 attempts)"
    assert calls == [False, False, True, False]  # the attempt after an expiry knows it
    # 1 s, 2 s, 4 s, each with jitter down to half
    assert len(waits) == 3
    assert all(b / 2 <= w <= b for w, b in zip(waits, [1, 2, 4], strict=True))


def test_retries_stop_at_the_first_success():
    outcomes: list[str | Exception] = [Retryable("reset"), "etag"]

    def attempt(expired: bool) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(attempt, 5, 0.1, threading.Event(), sleep=lambda s: None) == "etag"


def test_a_file_region_reads_exactly_its_bytes_and_counts_them(tmp_path):
    f = tmp_path / "data"
    f.write_bytes(bytes(range(256)) * 10_000)
    counted: list[int] = []
    fd = os.open(f, os.O_RDONLY)
    try:
        region = FileRegion(fd, 1000, 1_500_000, counted.append)
        chunks = iter(lambda: region.read(8192), b"")
        data = b"".join(chunks)
    finally:
        os.close(fd)
    assert len(region) == 1_500_000
    assert data == f.read_bytes()[1000:1_501_000]
    assert counted == [MiB, 1_500_000 - MiB, 0]


def test_resume_state_is_found_only_for_the_unchanged_file(tmp_path):
    f = tmp_path / "movie.mp4"
    f.write_bytes(b"x" * 100)
    store = StateStore(tmp_path / "state")
    state = ResumeState.for_file(f, "http://api", "put_folder/k", "u1", "id", 5 * MiB)
    store.save(f, state)
    assert store.load(f, api="http://api") == state
    assert store.load(f, api="http://other") is None
    f.write_bytes(b"y" * 101)
    assert store.load(f) is None
    assert store.load(f, check_file=False) == state
    store.delete(f)
    assert store.load(f, check_file=False) is None


@pytest.mark.parametrize(
    ("choice", "sent"), [("auto", "sha256"), ("sha256", "sha256"), ("md5", "md5"), ("none", "none")]
)
def test_auto_checksum_is_sha256_and_the_others_are_as_named(choice, sent):
    assert resolve_checksum(choice) == sent


def test_an_unknown_checksum_choice_is_refused():
    with pytest.raises(ValueError, match="checksum 'crc32'; allowed: auto, sha256, md5, none"):
        resolve_checksum("crc32")


@pytest.mark.parametrize(
    ("argv", "checksum"),
    [([], "auto"), (["--checksum", "md5"], "md5"), (["--md5", "always"], "md5"),
     (["--md5", "never"], "none"), (["--md5", "auto"], "auto")],
)  # fmt: skip
def test_the_old_md5_option_still_chooses_a_checksum(argv, checksum, tmp_path):
    args = parser().parse_args(["upload", str(tmp_path), "--api", "http://api", *argv])
    options = Options(checksum=args.checksum, md5=args.md5)
    assert options.sent_checksum == resolve_checksum(checksum)


def test_digests_are_read_a_block_at_a_time_from_the_region(tmp_path):
    f = tmp_path / "data.bin"
    data = os.urandom(3 * MiB + 7)
    f.write_bytes(data)
    fd = os.open(f, os.O_RDONLY)
    try:
        assert (
            digest_of("sha256", fd, 5, 2 * MiB + 1)
            == hashlib.sha256(data[5 : 2 * MiB + 6]).digest()
        )
        assert digest_of("md5", fd, 0, len(data)) == hashlib.md5(data).digest()  # noqa: S324
    finally:
        os.close(fd)


def test_the_composite_checksum_is_the_sha256_of_the_part_sha256s():
    # The strict S3 (LocalStack) stored "sOpb8VOF…=-2" for a 5 MiB random part and b"tail";
    # here: two known parts, recomputed by hand.
    digests = [hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()]
    joined = base64.b64encode(hashlib.sha256(digests[0] + digests[1]).digest()).decode()
    assert composite_sha256(digests) == f"{joined}-2"


def test_a_resume_state_saved_before_checksums_continues_with_md5_parts(tmp_path):
    f = tmp_path / "movie.mp4"
    f.write_bytes(b"x" * 100)
    store = StateStore(tmp_path / "state")
    state = ResumeState.for_file(f, "http://api", "put_folder/k", "u1", "id", 5 * MiB, "md5")
    old = {k: v for k, v in asdict(state).items() if k != "checksum"}
    store.save(f, state)  # creates the directory
    for part_md5, checksum in ((True, "md5"), (False, "none")):
        store._file(f).write_text(json.dumps({**old, "part_md5": part_md5}))
        assert store.load(f) == replace(state, checksum=checksum)


@pytest.mark.parametrize("lost", [(504, "Endpoint request timed out"), (409, "raced")])
def test_a_lost_completion_answer_is_found_in_the_status_verified_or_not(tmp_path, lost):
    import requests

    from presigned_upload.api import Api, ApiError
    from presigned_upload.transfer import Uploader

    class LostCompletion(Api):
        """S3 completed the upload, but the API's answer was lost (504)."""

        landed = "uploaded"

        def complete(self, key, upload_id, parts):
            raise ApiError(*lost)

        def status(self, upload_uuid):
            return {"status": self.landed, "size": 10, "etag": '"e-1"'}

    api = LostCompletion("http://api", requests.Session(), None)
    state = ResumeState("f", 10, 0, "http://api", "put_folder/k", "u", "uuid", 5 * MiB)
    uploader = Uploader(api, store=StateStore(tmp_path))
    for landed in ("uploaded", "verified"):  # where the service checks uploads, verified
        api.landed = landed
        assert uploader._complete(state, [], 10)["status"] == landed
    api.landed = "rejected"
    with pytest.raises(ApiError, match=str(lost[0])):
        uploader._complete(state, [], 10)


class Answers(requests.adapters.BaseAdapter):
    """A transport that answers each request with the next (status, JSON body)."""

    def __init__(self, *answers: tuple[int, dict[str, object]]) -> None:
        super().__init__()
        self.answers, self.sent = list(answers), 0

    def send(self, request, **kwargs):  # type: ignore[override]
        self.sent += 1
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code, response._content = status, json.dumps(body).encode()
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


def api_answering(*answers: tuple[int, dict[str, object]]) -> tuple[Api, Answers]:
    transport = Answers(*answers)
    session = requests.Session()
    session.mount("http://", transport)
    return Api("http://api.test", session, sleep=lambda _: None), transport


def test_a_quota_429_is_reported_at_once_with_its_message_but_throttling_is_retried():
    quota: dict[str, object] = {"Code": "QuotaExceeded", "limit": "files_per_day", "allowed": 2,
             "used": 2,
             "Message": "quota files_per_day reached: 2 of 2 uploads today; it resets at "
                        "2026-12-06T00:00:00Z", "resets_at": "2026-12-06T00:00:00Z"}  # fmt: skip
    api, transport = api_answering((429, quota))
    with pytest.raises(ApiError) as refused:
        api.put_url({"size": "10"})
    assert (str(refused.value), refused.value.status, transport.sent) == (
        "429: quota files_per_day reached: 2 of 2 uploads today; it resets at "
        "2026-12-06T00:00:00Z", 429, 1)  # fmt: skip
    # API Gateway's own throttling (no QuotaExceeded) passes: the next attempt succeeds.
    throttled: dict[str, object] = {"message": "Too Many Requests"}
    api, transport = api_answering((429, throttled), (200, {"PUT_URL": "u", "UUID": "x"}))
    assert (api.put_url({})["UUID"], transport.sent) == ("x", 2)
