"""Which backend signs: the own signer only where it builds the endpoint exactly as
botocore does; everything else (FIPS, dual-stack, accelerate, other partitions, a global
endpoint URL) goes to botocore, so that issued URLs go where the service's S3 calls go."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore
import botocore.session
import pytest

from chalicelib.core.errors import ConfigError
from chalicelib.core.s3 import client_config, make_s3_client
from chalicelib.core.settings import Settings
from chalicelib.core.signing import BotocoreBackend, SigV4Backend, backend_for, botocore_reason
from chalicelib.core.sigv4 import PARTITIONS, Endpoint

PARTITIONS_JSON = json.loads((Path(botocore.__file__).parent / "data/partitions.json").read_text())
OWN = {name for name, _, _ in PARTITIONS}
BOTOCORE_REGIONS = [
    (partition["id"], region)
    for partition in PARTITIONS_JSON["partitions"]
    for region in partition["regions"]
    if not region.endswith("-global")
]


@pytest.fixture(autouse=True)
def clean_aws_environment(monkeypatch, tmp_path):
    """Dummy credentials, and no shared config file or endpoint variable from this machine."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


def issued_host(settings: Settings) -> tuple[type, str]:
    backend = backend_for(settings, os.environ, lambda: make_s3_client(settings))
    url = backend.put_object("put_folder/k", {}, 60).url
    return type(backend), urlsplit(url).netloc


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def botocore_host(settings: Settings) -> str:
    """Where botocore, configured as the service configures it, sends this bucket's PUT
    (one shared session: loading S3's model for each of 50 regions would take seconds)."""
    config = client_config(settings)
    client: Any = _session().create_client(
        "s3", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )
    url = client.generate_presigned_url(
        "put_object", Params={"Bucket": settings.bucket, "Key": "put_folder/k"}, ExpiresIn=60
    )
    return str(urlsplit(url).netloc)


@pytest.mark.parametrize(("partition", "region"), BOTOCORE_REGIONS)
def test_every_region_botocore_knows_is_a_valid_setting(partition, region):
    settings = Settings.from_env({"UPLOAD_BUCKET": "my-uploads", "AWS_REGION": region})
    assert settings.region == region


def test_the_partitions_the_own_signer_builds_use_botocores_region_patterns():
    theirs = {p["id"]: p["regionRegex"] for p in PARTITIONS_JSON["partitions"]}
    for name, pattern, _ in PARTITIONS:
        assert f"^{pattern.pattern}$" == theirs[name].replace("\\-", "-")


@pytest.mark.parametrize(("partition", "region"), BOTOCORE_REGIONS)
def test_each_region_is_signed_by_the_own_signer_only_where_its_host_is_botocores(
    partition, region
):
    settings = Settings(bucket="my-uploads", region=region)
    kind, host = issued_host(settings)
    assert host == botocore_host(settings)
    assert kind is (SigV4Backend if partition in OWN else BotocoreBackend)


@pytest.mark.parametrize(
    ("variable", "host"),
    [
        ("AWS_USE_FIPS_ENDPOINT", "my-uploads.s3-fips.us-east-1.amazonaws.com"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "my-uploads.s3.dualstack.us-east-1.amazonaws.com"),
    ],
)
def test_fips_and_dual_stack_urls_are_signed_by_botocore_at_its_endpoint(
    monkeypatch, variable, host
):
    settings = Settings(bucket="my-uploads", region="us-east-1")
    own = Endpoint.for_settings("my-uploads", "us-east-1", None)
    assert own is not None
    monkeypatch.setenv(variable, "true")
    assert issued_host(settings) == (BotocoreBackend, host)
    assert own.netloc != host  # the own signer would have sent the browser elsewhere


def test_accelerate_in_the_shared_config_file_goes_to_botocore(monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\ns3 =\n    use_accelerate_endpoint = true\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    settings = Settings(bucket="my-uploads", region="eu-west-1")
    assert botocore_reason(settings, os.environ) == f"{config} sets use_accelerate_endpoint"
    assert issued_host(settings) == (BotocoreBackend, "my-uploads.s3-accelerate.amazonaws.com")


def test_a_global_endpoint_url_goes_to_botocore(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
    settings = Settings(bucket="my-uploads", region="eu-west-1")
    assert issued_host(settings) == (BotocoreBackend, "127.0.0.1:9999")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert issued_host(settings) == (SigV4Backend, "my-uploads.s3.eu-west-1.amazonaws.com")


def test_a_custom_s3_endpoint_is_signed_by_the_own_signer_path_style():
    settings = Settings(bucket="my-uploads", region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert issued_host(settings) == (SigV4Backend, "127.0.0.1:9")
    assert botocore_host(settings) == "127.0.0.1:9"


def test_signing_backend_botocore_forces_botocore():
    settings = Settings.from_env(
        {"UPLOAD_BUCKET": "my-uploads", "AWS_REGION": "eu-west-1", "SIGNING_BACKEND": "botocore"}
    )
    assert issued_host(settings) == (BotocoreBackend, "my-uploads.s3.eu-west-1.amazonaws.com")


def test_signing_backend_sigv4_refuses_a_region_it_cannot_address():
    settings = Settings(bucket="my-uploads", region="eusc-de-east-1", signing_backend="sigv4")
    with pytest.raises(ConfigError) as raised:
        backend_for(settings, os.environ, lambda: make_s3_client(settings))
    assert str(raised.value) == (
        "SIGNING_BACKEND=sigv4, but the own signer cannot address region 'eusc-de-east-1'; "
        "allowed: auto or botocore for it"
    )


def test_an_unknown_signing_backend_is_refused_with_the_choices():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"UPLOAD_BUCKET": "b-1", "AWS_REGION": "eu-west-1",
                           "SIGNING_BACKEND": "fast"})  # fmt: skip
    assert str(raised.value) == "SIGNING_BACKEND='fast' is invalid; allowed: auto, sigv4, botocore"
