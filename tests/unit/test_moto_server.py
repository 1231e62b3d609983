"""devstack.moto_server: DynamoDB's requests one at a time, as DynamoDB's atomicity needs;
the other services' in parallel."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devstack.moto_server import SerialDynamoDB


class Overlaps:
    """A WSGI app that records how many requests it is in at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self._count = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._count:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            start_response("200 OK", [])
            time.sleep(0.02)  # long enough for the other threads to arrive
            yield b"{}"
        finally:
            with self._count:
                self.inside -= 1


def run(target: str, requests: int = 8) -> int:
    inner = Overlaps()
    app = SerialDynamoDB(inner)
    barrier = threading.Barrier(requests)

    def one(_: int) -> bytes:
        barrier.wait()
        return b"".join(app({"HTTP_X_AMZ_TARGET": target}, lambda *a: None))

    with ThreadPoolExecutor(requests) as pool:
        assert list(pool.map(one, range(requests))) == [b"{}"] * requests
    return inner.most


def test_dynamodb_requests_never_overlap_even_while_their_answers_are_produced():
    assert run("DynamoDB_20120810.TransactWriteItems") == 1


def test_other_services_requests_run_in_parallel():
    assert run("") > 1
