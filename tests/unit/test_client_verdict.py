"""The client's wait for the verdict (presigned_upload/verdict.py): how often it asks and
when it stops, on a clock of its own. The real path is in tests/e2e/test_cli.py."""

from __future__ import annotations

from typing import Any

from presigned_upload.verdict import wait_for_verdict


class Answers:
    """An Api whose status answers come from a list, on a clock the sleeps advance."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)
        self.asked = 0
        self.now = 0.0
        self.slept: list[float] = []

    def status(self, upload_id: str) -> dict[str, Any]:
        self.asked += 1
        return {"UUID": upload_id, "status": self.statuses.pop(0)}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def wait(api: Answers, timeout: float) -> dict[str, Any]:
    return wait_for_verdict(api, "u1", timeout, 1.0, api.clock, api.sleep)  # type: ignore[arg-type]


def test_it_asks_until_the_verdict_through_scanning():
    api = Answers("uploaded", "scanning", "scanning", "rejected")
    assert wait(api, 60) == {"UUID": "u1", "status": "rejected"}
    assert (api.asked, api.slept) == (4, [1.0, 1.0, 1.0])


def test_it_asks_a_last_time_at_the_timeout_then_returns_that_status():
    api = Answers(*["scanning"] * 10)
    assert wait(api, 3.5) == {"UUID": "u1", "status": "scanning"}
    # Asked at 0, 1, 2, 3 and 3.5 s: never earlier than the timeout, never after it.
    assert (api.asked, api.slept, api.now) == (5, [1.0, 1.0, 1.0, 0.5], 3.5)
