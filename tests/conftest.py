"""Fixtures shared by the tiers that run the local stack (e2e, browser)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.stack import Stack, start_stack, stop_stack

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


def _strict(stage: str, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A local stack on the strict S3, for the duration of a module."""
    _need_strict_s3()
    stack = start_stack(stage, s3="strict", env=env)
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
def strict_stack() -> Iterator[Stack]:
    """The `local` stack on the strict S3 (`make run S3=strict`)."""
    yield from _strict("local")


@pytest.fixture(scope="module")
def local_prod_stack() -> Iterator[Stack]:
    """`make run S3=strict RUN_ARGS="--stage local-prod"`: prod's four rules, Cognito
    (tokens decoded, not verified, by `chalice local`), on the strict S3."""
    yield from _strict("local-prod")


# Uppy's signRequest stages: Cognito with the type and size rules, then no-overwrite too.
UPPY_RULES = {"UPLOAD_ALLOWED_TYPES": "image/*,video/mp4", "UPLOAD_MAX_BYTES": "10485760"}


@pytest.fixture(scope="module")
def signed_uppy_stack() -> Iterator[Stack]:
    yield from _strict("local-cognito", UPPY_RULES)


@pytest.fixture(scope="module")
def no_overwrite_uppy_stack() -> Iterator[Stack]:
    yield from _strict("local-cognito", {**UPPY_RULES, "UPLOAD_NO_OVERWRITE": "true"})
