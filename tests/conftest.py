"""Fixtures shared by the tiers that run the local stack (e2e, browser)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.stack import PROJECT, Stack, start_stack, stop_stack

# `make unit` (the inner loop) tries fewer examples per property than `make test` (CI).
settings.register_profile("dev", max_examples=15)
settings.register_profile("ci", max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    stack = start_stack("local")
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
def cognito_stack() -> Iterator[Stack]:
    stack = start_stack("local-cognito")
    yield stack
    stop_stack(stack)


def _need_strict_s3() -> None:
    """The strict S3 needs Python 3.13; without it the tests skip, except where
    REQUIRE_STRICT_S3=1 (CI) makes that a failure."""
    from devstack.strict_s3 import StrictS3Unavailable, find_python

    try:
        find_python()
    except StrictS3Unavailable as exc:
        if os.environ.get("REQUIRE_STRICT_S3") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def strict_stack() -> Iterator[Stack]:
    """The `local` stack on the strict S3 (`make run S3=strict`)."""
    _need_strict_s3()
    stack = start_stack("local", s3="strict")
    yield stack
    stop_stack(stack)


# prod's upload rules, as .chalice/config.json sets them, exported over the local stage.
_PROD = json.loads((PROJECT / ".chalice" / "config.json").read_text())["stages"]["prod"]
PROD_RULES = {name: value for name, value in _PROD["environment_variables"].items()
              if name.startswith("UPLOAD_") and name != "UPLOAD_BUCKET"}  # fmt: skip


@pytest.fixture(scope="module")
def strict_prod_stack() -> Iterator[Stack]:
    """The strict S3 with prod's four upload rules (types, size, checksum, no overwrite)."""
    _need_strict_s3()
    stack = start_stack("local", s3="strict", env=PROD_RULES)
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
def local_prod_stack() -> Iterator[Stack]:
    """`make run S3=strict RUN_ARGS="--stage local-prod"`: prod's four rules, Cognito
    (tokens decoded, not verified, by `chalice local`), on the strict S3."""
    _need_strict_s3()
    stack = start_stack("local-prod", s3="strict")
    yield stack
    stop_stack(stack)


# Uppy's signRequest stages: Cognito with the type and size rules, then no-overwrite too.
UPPY_RULES = {"UPLOAD_ALLOWED_TYPES": "image/*,video/mp4", "UPLOAD_MAX_BYTES": "10485760"}


@pytest.fixture(scope="module")
def signed_uppy_stack() -> Iterator[Stack]:
    _need_strict_s3()
    stack = start_stack("local-cognito", s3="strict", env=UPPY_RULES)
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
def no_overwrite_uppy_stack() -> Iterator[Stack]:
    _need_strict_s3()
    stack = start_stack("local-cognito", s3="strict",
                        env={**UPPY_RULES, "UPLOAD_NO_OVERWRITE": "true"})  # fmt: skip
    yield stack
    stop_stack(stack)
