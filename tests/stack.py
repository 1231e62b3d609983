"""The local stack (`python -m devstack`) for tests: moto's server, `chalice local` and the
upload page as real subprocesses on free ports (fixtures in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from tests.support import LOCAL_AWS_ENV, free_port

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    proc: subprocess.Popen[str]
    api: str
    s3: str
    page: str
    output: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def text(self) -> str:
        return "".join(self.output)

    def read(self, stream: Iterable[str]) -> None:
        """Collect the launcher's output (on a thread), waking whoever waits for a line."""
        for line in stream:
            with self._changed:
                self.output.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether ``text`` appears in the output within ``timeout`` seconds (or the
        launcher exits without it): woken by each new line, not by polling."""
        with self._changed:
            return (
                self._changed.wait_for(
                    lambda: text in self.text() or self.proc.poll() is not None, timeout
                )
                and text in self.text()
            )


def _wait_ready(stack: Stack, timeout: float) -> None:
    if not stack.wait_for("devstack: ready", timeout):
        stack.proc.kill()
        pytest.fail(f"devstack did not become ready:\n{stack.text()}")


def start_stack(stage: str, s3: str = "moto", env: dict[str, str] | None = None) -> Stack:
    s3_port, api_port, web_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack",
            "--stage",
            stage,
            "--s3",
            s3,
            "--s3-port",
            str(s3_port),
            "--api-port",
            str(api_port),
            "--web-port",
            str(web_port),
            # Test runs write files (Uppy's node_modules, caches); the API must not restart.
            "--no-reload",
        ],
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(
        proc,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{s3_port}",
        f"http://127.0.0.1:{web_port}/",
    )
    out = proc.stdout
    assert out is not None
    reader = threading.Thread(target=stack.read, args=(out,), daemon=True)
    reader.start()
    # The strict S3 installs itself on first use (a minute or two), then starts slowly.
    _wait_ready(stack, timeout=90 if s3 == "moto" else 600)
    return stack


def stop_stack(stack: Stack) -> None:
    # SIGTERM, not SIGKILL: the launcher must stop its children, which run in sessions of
    # their own and would otherwise outlive the test run.
    if stack.proc.poll() is None:
        stack.proc.terminate()
        stack.proc.wait(timeout=20)


def local_s3(stack: Stack):
    return boto3.client(
        "s3",
        endpoint_url=stack.s3,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
