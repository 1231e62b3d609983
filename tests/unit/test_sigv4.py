"""The SigV4 signer against AWS's published examples, and byte for byte against botocore.

botocore is the reference: for every request the service signs (PUT with each rule's
headers, upload part, download, POST policy), random keys, regions, endpoints, session
tokens and lifetimes, both must produce the same URL (or form fields), character for
character, at the same instant.
"""

from __future__ import annotations

import json
import os
import string
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import cache
from unittest import mock
from urllib.parse import parse_qs, quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.credentials import CredentialSource
from chalicelib.core.s3 import make_s3_client
from chalicelib.core.settings import Settings
from chalicelib.core.signing import MULTIPART_OPERATIONS, BotocoreBackend, SigV4Backend
from chalicelib.core.sigv4 import Credentials, Endpoint, Signer, authorization_headers

AWS_EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_reproduces_the_s3_documentations_presigned_url():
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    endpoint = Endpoint("https", "examplebucket.s3.amazonaws.com",
                        "examplebucket.s3.amazonaws.com", False, "examplebucket")  # fmt: skip
    signer = Signer(endpoint, "us-east-1", clock=lambda: datetime(2013, 5, 24, tzinfo=UTC))
    signed = signer.presign(Credentials(AWS_EXAMPLE_KEY, AWS_EXAMPLE_SECRET), "GET",
                            "test.txt", 86400)  # fmt: skip
    assert signed.url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    assert signed.expires_at == datetime(2013, 5, 25, tzinfo=UTC)


def test_reproduces_the_s3_documentations_post_policy_signature():
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html
    policy = (
        "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7"
        "ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91"
        "c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3Qi"
        "OiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwi"
        "fSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRh"
        "LXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVT"
        "MjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNy"
        "ZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9"
        "LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAi"
        "MjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
    )
    endpoint = Endpoint.for_settings("sigv4examplebucket", "us-east-1", None)
    assert endpoint is not None
    signer = Signer(endpoint, "us-east-1")
    credentials = Credentials(AWS_EXAMPLE_KEY, AWS_EXAMPLE_SECRET)
    assert signer.policy_signature(credentials, "20151229", policy) == (
        "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
    )


# -- differential: the same request, signed by both, at the same instant ------------------

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]
ENDPOINTS = [None, None, "http://127.0.0.1:4566", "https://minio.internal:443"]
BUCKETS = ["my-uploads", "uploads.example.com", "a1b", "x" * 63]
TOKENS = [None, None, "IQoJb3JpZ2luX2VjEN7//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+/Ab==",
          "token with spaces & = + %"]  # fmt: skip

key_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                   min_size=1, max_size=200)  # fmt: skip
special_keys = st.text(alphabet=" +%~=&/?#:;,@!$'()*[]\\^`{|}\"<>é€😀" + string.ascii_letters,
                       min_size=1, max_size=120)  # fmt: skip
long_keys = st.text(alphabet=string.ascii_letters + "/-_.+ ", min_size=900, max_size=1000)
keys = st.one_of(key_text, special_keys, long_keys)
# base64 SHA-256 digests: of no bytes, and one with '+' and '/' (escaped in a query string).
SHA256S = ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
           "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="]  # fmt: skip
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["image/png", "text/plain; charset=utf-8",
                                         'multipart/mixed; boundary="a  b"']),
        "Content-Length": st.integers(0, 5 * 1024**3).map(str),
        "Content-MD5": st.sampled_from(["1B2M2Y8AsgTpgAmY7PhCfg==", "rL0Y20zC+Fzt72VPzMSk2A=="]),
        "Content-Disposition": st.sampled_from([
            "attachment; filename=\"a b.pdf\"; filename*=UTF-8''a%20b.pdf",
            "inline; filename=\"na_ve.txt\"; filename*=UTF-8''na%C3%AFve.txt"]),
        "If-None-Match": st.just("*"),
        "x-amz-checksum-sha256": st.sampled_from(SHA256S),
        "x-amz-meta-filename": st.sampled_from(["report.pdf", "a%20b%2Bc.txt"]),
    },
)  # fmt: skip
instants = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31))


@cache
def reference_client(region: str, endpoint: str | None, token: str | None):
    """The service's own botocore client configuration (one per combination: building
    one costs tens of milliseconds; the bucket is a parameter of each call)."""
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJal/rX+Ut=nFEMI"}
    if token is not None:
        env["AWS_SESSION_TOKEN"] = token
    with mock.patch.dict(os.environ, env, clear=False):
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") + (
            () if token else ("AWS_SESSION_TOKEN",)
        ):
            os.environ.pop(name, None)
        return make_s3_client(Settings(bucket="unused", region=region, endpoint_url=endpoint))


def both(bucket, region, endpoint, token, instant):
    """(ours, botocore's) backends for the same settings, credentials and clock."""
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJal/rX+Ut=nFEMI",
           **({"AWS_SESSION_TOKEN": token} if token else {})}  # fmt: skip
    found = Endpoint.for_settings(bucket, region, endpoint)
    assert found is not None
    ours = SigV4Backend(Signer(found, region, clock=lambda: instant), CredentialSource(env),
                        clock=lambda: instant)  # fmt: skip
    theirs = BotocoreBackend(lambda: reference_client(region, endpoint, token), bucket)
    return ours, theirs


def frozen_botocore(instant: datetime) -> ExitStack:
    naive = instant.replace(tzinfo=None)
    stack = ExitStack()
    for module in ("botocore.auth", "botocore.signers"):
        stack.enter_context(mock.patch(f"{module}.get_current_datetime", return_value=naive))
    return stack


common = {
    "bucket": st.sampled_from(BUCKETS),
    "region": st.sampled_from(REGIONS),
    "endpoint": st.sampled_from(ENDPOINTS),
    "token": st.sampled_from(TOKENS),
    "instant": instants.map(lambda d: d.replace(tzinfo=UTC)),
    "key": keys,
    "expires": st.integers(1, 604800),
}
SETTINGS = settings(
    max_examples=settings().max_examples * 3 // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(**common, headers=headers)
def test_put_urls_match_botocore(bucket, region, endpoint, token, instant, key, expires, headers):
    ours, theirs = both(bucket, region, endpoint, token, instant)
    with frozen_botocore(instant):
        expected = theirs.put_object(key, headers, expires)
    actual = ours.put_object(key, headers, expires)
    assert actual.url == expected.url
    assert (actual.signed_at, actual.expires_in) == (expected.signed_at, expected.expires_in)


@SETTINGS
@given(
    **common,
    upload_id=st.text(alphabet=string.ascii_letters + string.digits + "._-+/=~", min_size=1),
    part=st.integers(1, 10000),
    checksums=st.fixed_dictionaries(
        {},
        optional={
            "Content-MD5": st.just("rL0Y20zC+Fzt72VPzMSk2A=="),
            "x-amz-checksum-sha256": st.sampled_from(SHA256S),
        },
    ),
)
def test_part_urls_match_botocore(
    bucket, region, endpoint, token, instant, key, expires, upload_id, part, checksums
):
    ours, theirs = both(bucket, region, endpoint, token, instant)
    with frozen_botocore(instant):
        expected = theirs.upload_part(key, upload_id, part, checksums, expires)
    assert ours.upload_part(key, upload_id, part, checksums, expires).url == expected.url


@SETTINGS
@given(**common, disposition=st.text(min_size=1, max_size=100))
def test_download_urls_match_botocore(
    bucket, region, endpoint, token, instant, key, expires, disposition
):
    ours, theirs = both(bucket, region, endpoint, token, instant)
    with frozen_botocore(instant):
        expected = theirs.get_object(key, disposition, expires)
    assert ours.get_object(key, disposition, expires).url == expected.url


@SETTINGS
@given(
    **common,
    content_type=st.sampled_from([None, "image/png", 'application/pdf; x="é"']),
    filename=st.sampled_from([None, "a%20b.pdf"]),
    max_bytes=st.integers(0, 5 * 1024**3),
)
def test_post_policies_match_botocore(
    bucket, region, endpoint, token, instant, key, expires, content_type, filename, max_bytes
):
    fields: dict[str, str] = {}
    conditions: list[object] = [["content-length-range", 0, max_bytes]]
    if content_type:
        fields["Content-Type"] = content_type
        conditions.append({"Content-Type": content_type})
    else:
        conditions.append(["starts-with", "$Content-Type", ""])
    if filename:
        fields["x-amz-meta-filename"] = filename
        conditions.append({"x-amz-meta-filename": filename})
    ours, theirs = both(bucket, region, endpoint, token, instant)
    with frozen_botocore(instant):
        expected = theirs.post(key, dict(fields), list(conditions), expires)
    actual = ours.post(key, dict(fields), list(conditions), expires)
    assert (actual.url, actual.fields) == (expected.url, expected.fields)
    assert list(actual.fields) == list(expected.fields)  # the form's field order too
    assert actual.expires_at == expected.expires_at


def test_expiring_credentials_cap_the_url_and_say_so():
    instant = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
           "AWS_CREDENTIAL_EXPIRATION": (instant + timedelta(seconds=90)).isoformat()}  # fmt: skip
    found = Endpoint.for_settings("b-1", "eu-west-1", None)
    assert found is not None
    backend = SigV4Backend(Signer(found, "eu-west-1", clock=lambda: instant),
                           CredentialSource(env), clock=lambda: instant)  # fmt: skip
    assert backend.put_object("k", {}, 300).expires_in == 90
    assert backend.put_object("k", {}, 60).expires_in == 60


# -- the checksum header, against botocore's SigV4 query signer itself --------------------
# generate_presigned_url is one botocore path to a URL; S3SigV4QueryAuth is what signs it.
# Given an AWSRequest that carries x-amz-checksum-sha256 as a header, it must keep the
# header signed (SignedHeaders) and out of the query, exactly as the own signer does.


def botocore_query_auth(method, url, headers, region, expires, instant):
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method=method, url=url, headers=dict(headers))
    signer = S3SigV4QueryAuth(BotoCredentials("AKIDEXAMPLE", "wJal/rX+Ut=nFEMI"), "s3", region,
                              expires=expires)  # fmt: skip
    with frozen_botocore(instant):
        signer.add_auth(request)
    return request.url


@SETTINGS
@given(
    region=st.sampled_from(REGIONS),
    instant=common["instant"],
    key=st.text(alphabet=string.ascii_letters + string.digits + "/-_.", min_size=1, max_size=80),
    expires=common["expires"],
    sha256=st.sampled_from(SHA256S),
    md5=st.sampled_from([None, "rL0Y20zC+Fzt72VPzMSk2A=="]),
    part=st.one_of(st.none(), st.integers(1, 10000)),
)
def test_the_checksum_header_is_signed_as_botocores_query_signer_signs_it(
    region, instant, key, expires, sha256, md5, part
):
    endpoint = Endpoint.for_settings("my-uploads", region, None)
    assert endpoint is not None
    credentials = Credentials("AKIDEXAMPLE", "wJal/rX+Ut=nFEMI")
    ours = Signer(endpoint, region, clock=lambda: instant)
    headers = {"x-amz-checksum-sha256": sha256, **({"Content-MD5": md5} if md5 else {})}
    params = [] if part is None else [("uploadId", "up/load+id"), ("partNumber", str(part))]
    actual = ours.presign(credentials, "PUT", key, expires, params, headers).url
    query = "" if part is None else f"?uploadId=up%2Fload%2Bid&partNumber={part}"
    url = f"https://{endpoint.host}/{quote(key, safe='/~')}{query}"
    expected = botocore_query_auth("PUT", url, headers, region, expires, instant)
    assert actual == expected
    signed = parse_qs(urlsplit(actual).query)
    assert "x-amz-checksum-sha256" in signed["X-Amz-SignedHeaders"][0].split(";")
    assert not any(name.lower().startswith("x-amz-checksum") for name in signed)


@SETTINGS
@given(
    **common,
    operation=st.sampled_from(sorted(MULTIPART_OPERATIONS)),
    upload_id=st.text(alphabet=string.ascii_letters + string.digits + "._-+/=~", min_size=1),
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from(["image/png", "application/pdf"]),
            "If-None-Match": st.just("*"),
            "x-amz-mp-object-size": st.integers(0, 5 * 1024**4).map(str),
        },
    ),
)
def test_multipart_requests_for_browsers_match_botocore(
    bucket, region, endpoint, token, instant, key, expires, operation, upload_id, headers
):
    # Which headers an operation takes is botocore's business; each is signed as given.
    allowed = {"CreateMultipartUpload": {"Content-Type"},
               "CompleteMultipartUpload": {"If-None-Match", "x-amz-mp-object-size"}}  # fmt: skip
    headers = {k: v for k, v in headers.items() if k in allowed.get(operation, ())}
    upload = None if operation == "CreateMultipartUpload" else upload_id
    ours, theirs = both(bucket, region, endpoint, token, instant)
    with frozen_botocore(instant):
        expected = theirs.multipart_request(operation, key, upload, headers, expires)
    actual = ours.multipart_request(operation, key, upload, headers, expires)
    assert actual.url == expected.url


def test_dates_are_formatted_once_per_second_and_always_as_strftime_would():
    from datetime import UTC, datetime, timedelta

    from chalicelib.core.sigv4 import AMZ_DATE, ISO8601, formatted

    start = datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    for step in range(4):  # across a second, a day and a year
        moment = start + timedelta(seconds=step)
        for fmt in (AMZ_DATE, ISO8601):
            assert formatted(moment, fmt) == moment.strftime(fmt)
    assert formatted(start, AMZ_DATE) is formatted(start.replace(), AMZ_DATE)  # cached


# -- header signing of JSON API calls (DynamoDB, for quotas) -------------------------------

json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | key_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key_text, inner, max_size=4),
    max_leaves=12,
).map(lambda value: json.dumps({"Item": value}).encode())


@SETTINGS
@given(region=st.sampled_from(REGIONS), token=st.sampled_from(TOKENS),
       instant=instants.map(lambda d: d.replace(tzinfo=UTC)), body=json_bodies,
       target=st.sampled_from(["DynamoDB_20120810.TransactWriteItems",
                               "DynamoDB_20120810.GetItem"]),
       host=st.sampled_from(["dynamodb.eu-west-1.amazonaws.com", "127.0.0.1:8001"]))  # fmt: skip
def test_json_api_calls_are_signed_as_botocores_sigv4auth_signs_them(
    region, token, instant, body, target, host
):
    credentials = Credentials("AKIDEXAMPLE", "wJal/rX+Ut=nFEMI", token)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target}
    ours = authorization_headers(credentials, "POST", host, body, headers, region,
                                 "dynamodb", instant)  # fmt: skip
    request = AWSRequest("POST", f"https://{host}/", data=body, headers=dict(headers))
    with frozen_botocore(instant):
        SigV4Auth(BotoCredentials("AKIDEXAMPLE", "wJal/rX+Ut=nFEMI", token), "dynamodb",
                  region).add_auth(request)  # fmt: skip
    theirs = {name: request.headers[name] for name in ours}
    assert ours == theirs
    assert sorted(ours) == sorted(["Authorization", "X-Amz-Date"]
                                  + (["X-Amz-Security-Token"] if token else []))  # fmt: skip


def test_reproduces_a_published_sigv4_header_signature():
    # AWS's SigV4 test suite, "post-vanilla": POST / with no body at 20150830T123600Z.
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    added = authorization_headers(credentials, "POST", "example.amazonaws.com", b"", {},
                                  "us-east-1", "service",
                                  datetime(2015, 8, 30, 12, 36, tzinfo=UTC))  # fmt: skip
    assert added == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        "aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    }
