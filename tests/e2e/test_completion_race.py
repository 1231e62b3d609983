"""The size limit holds against a part swapped while the API completes the upload.

A loopback proxy sits between the API and the strict S3 (LocalStack, which checks
x-amz-mp-object-size and part ETags). When it forwards the API's ListParts, it replaces
part 1 with a larger one before the API sees the listing: deterministic, no racing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator

import pytest
import requests
from chalice.test import Client

from tests.stack import local_s3
from tests.support import LOCAL_AWS_ENV, Answer, ForwardingProxy, load_app

pytestmark = [pytest.mark.e2e, pytest.mark.strict]
MiB = 1024**2
LIMIT = 6 * MiB
APP = load_app("local")


class SwapProxy:
    """The API's S3, through a proxy that runs ``on_list`` once, after S3 answers a
    ListParts and before the API hears it."""

    def __init__(self, upstream: str) -> None:
        self.on_list: Callable[[], None] | None = None
        self.proxy = ForwardingProxy(upstream, self._intercept)
        self.url = self.proxy.url

    def _intercept(self, method: str, path: str, forward: Callable[[], Answer]) -> Answer:
        answer = forward()
        listing = method == "GET" and "uploadId=" in path and "partNumber" not in path
        if listing and self.on_list is not None:
            swap, self.on_list = self.on_list, None
            swap()
        return answer


@pytest.fixture
def proxied_api(strict_stack, monkeypatch) -> Iterator[tuple[Client, SwapProxy]]:
    proxy = SwapProxy(strict_stack.s3)
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(LIMIT))
    APP.services.cache_clear()
    with Client(APP.app, stage_name="local") as client:
        yield client, proxy
    APP.services.cache_clear()
    proxy.proxy.shutdown()


def post(client, path, body):
    return client.http.post(
        path, body=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def put_part(client, upload, number, data):
    ticket = client.http.get(f"/s3/multipart/{upload['uploadId']}/{number}?key={upload['key']}")
    assert ticket.status_code == 200, ticket.body
    answer = requests.put(ticket.json_body["url"], data=data, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.headers["ETag"]


def start(client):
    """An upload of 5 MiB + 100 bytes, within the 6 MiB limit, and a 6 MiB part 1 to
    swap in for the original: 6 MiB + 100 bytes in all, over the limit."""
    upload = post(client, "/s3/multipart", {"filename": "a.bin"}).json_body
    etags = [put_part(client, upload, 1, os.urandom(5 * MiB)),
             put_part(client, upload, 2, os.urandom(100))]  # fmt: skip
    return upload, etags


def stored(strict_stack, key):
    listed = local_s3(strict_stack).list_objects_v2(Bucket="uploads-local", Prefix=key)
    return [o["Size"] for o in listed.get("Contents", [])]


def test_a_part_swapped_after_the_listing_cannot_be_completed_with_its_new_etag(
    proxied_api, strict_stack
):
    # GIVEN an upload within the limit, and a larger part 1 whose ETag (its MD5) the
    # attacker knows before uploading it
    client, proxy = proxied_api
    upload, (_, etag2) = start(client)
    bigger = os.urandom(LIMIT)
    new_etag = f'"{hashlib.md5(bigger).hexdigest()}"'  # noqa: S324 (S3's part ETag)
    proxy.on_list = lambda: put_part(client, upload, 1, bigger)
    # WHEN it completes naming the new ETag, and swaps the part while the API lists
    response = post(
        client,
        f"/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}",
        {"parts": [{"PartNumber": 1, "ETag": new_etag}, {"PartNumber": 2, "ETag": etag2}]},
    )
    # THEN the API completes only with what it listed: refused, and nothing is stored
    assert (response.status_code, response.json_body["Message"]) == (
        400,
        f"part 1's ETag {new_etag!r} is not the one S3 holds; allowed: the ETag of each part "
        "as S3 lists it (GET /s3/multipart/{uploadId}); a part uploaded again must be "
        "listed with its new ETag",
    )
    assert stored(strict_stack, upload["key"]) == []


def test_completing_with_the_listed_etags_after_a_swap_is_refused_by_s3(proxied_api, strict_stack):
    client, proxy = proxied_api
    upload, (etag1, etag2) = start(client)
    proxy.on_list = lambda: put_part(client, upload, 1, os.urandom(LIMIT))
    response = post(
        client,
        f"/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}",
        {"parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]},
    )
    assert (response.status_code, response.json_body["Code"]) == (400, "BadRequestError")
    assert stored(strict_stack, upload["key"]) == []
