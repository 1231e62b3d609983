"""Fixtures shared by the tiers that run the local stack (e2e, browser)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import Stack, start_stack, stop_stack


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
