"""`make run`: a local S3 on loopback, the upload bucket, and `chalice local`, in one command.

    python -m devstack [--stage local] [--s3 moto|strict] [--host 127.0.0.1] [--s3-port 4566]
                       [--api-port 8000] [--web-port 8001] [--no-reload] [--s3-endpoint URL]

No AWS account is needed: S3 is moto's server (fast, checks no signature), or with
``--s3 strict`` LocalStack's S3, which verifies signatures, expiry, signed headers and
checksums as AWS does (devstack/strict_s3.py), or with --s3-endpoint an S3 of your own.
URLs are signed with dummy credentials that only the local S3 accepts. The upload page and
openapi.yaml are served on --web-port. Ctrl-C (or SIGTERM)
stops everything.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from chalicelib.core.auth import AuthConfig
from chalicelib.core.errors import ConfigError
from chalicelib.core.logs import log_format, log_level
from chalicelib.core.settings import Settings, cors_allow_origin
from devstack import events, strict_s3, web
from devstack.cors import cors_rules
from infra.stages import stage_environment, stage_names

PROJECT = Path(__file__).resolve().parent.parent
# Only stages meant for this machine: they name the local bucket, and `chalice local`
# checks no token, so a deployed stage's authorizer would not be what it seems.
LOCAL_STAGES = [name for name in stage_names() if name.startswith("local")]
# Credentials only the local S3 accepts; they keep real ones out of the local stack.
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that would point the stack at a real account.
_SCRUBBED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")


def child_environment(base: Mapping[str, str], s3_endpoint: str) -> dict[str, str]:
    """The environment for moto and `chalice local`: local credentials and the local S3."""
    env = {k: v for k, v in base.items() if k not in _SCRUBBED}
    env.update(LOCAL_AWS)
    env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
    # The verifier's EventBridge and queue: moto's server, or LocalStack, serves them with S3.
    env["AWS_ENDPOINT_URL_EVENTBRIDGE"] = s3_endpoint
    env["AWS_ENDPOINT_URL_SQS"] = s3_endpoint
    # The quota table (UPLOAD_QUOTA_*): moto's DynamoDB, on the same port as its S3.
    env["AWS_ENDPOINT_URL_DYNAMODB"] = s3_endpoint
    env["PYTHONUNBUFFERED"] = "1"
    # A short line per request for the person watching; Lambda keeps the EMF line.
    env.setdefault("LOG_FORMAT", "text")
    return env


def exported_settings(base: Mapping[str, str], stage_env: Mapping[str, str]) -> dict[str, str]:
    """The stage's settings that the user exported: they win over .chalice/config.json
    locally (`chalice local` alone would apply the file's values over them)."""
    return {name: base[name] for name in stage_env if name in base}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, proc: Child, timeout: float) -> None:
    """Block until something accepts connections on host:port, or fail if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.exit_message())
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


class Child(subprocess.Popen[bytes]):
    """A child process in its own session, named for messages."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], **kw: Any) -> None:
        # Its own session: Ctrl-C reaches only the launcher, which then stops the child's
        # whole process group (chalice's reloader forks a worker of its own).
        super().__init__(args, env=env, cwd=PROJECT, start_new_session=True, **kw)
        self.name = name

    def exit_message(self) -> str:
        return f"{self.name} exited with status {self.returncode}"

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after 5 s."""
        if self.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.wait()


def start_s3(kind: str, host: str, port: int, env: Mapping[str, str]) -> Child:
    """The local S3: moto's server, or the strict one (installed on first use)."""
    if kind == "strict":
        python = strict_s3.installed_python()
        environ = strict_s3.environment(env, host, port, strict_s3.data_dir())
        name, args = "the strict local S3 (LocalStack)", strict_s3.command(python)
    else:
        environ = dict(env)
        name = "the local S3 (moto)"
        args = [sys.executable, "-m", "devstack.moto_server", "-H", host, "-p", str(port)]
    # Its access log would print every signed URL; errors show as its exit status.
    return Child(name, args, environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def create_bucket(settings: Settings, env: Mapping[str, str], origin: str) -> None:
    """Create the upload bucket with the same CORS rules as infra/bucket.yaml."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=settings.region,
    ).client("s3", endpoint_url=settings.endpoint_url)
    try:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=settings.bucket)
        s3.put_bucket_cors(
            Bucket=settings.bucket,
            CORSConfiguration={"CORSRules": cors_rules({"AllowedOrigin": origin})},  # type: ignore[typeddict-item]
        )
    except (BotoCoreError, ClientError) as exc:
        msg = f"cannot prepare bucket {settings.bucket} at {settings.endpoint_url}: {exc}"
        raise RuntimeError(msg) from exc


def create_quota_table(settings: Settings, env: Mapping[str, str]) -> None:
    """The quota table as the stage's template makes it: one string key, ``pk``, and a
    TTL on ``expires_at`` (chalicelib/quotas/ledger.py)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    dynamodb = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).client("dynamodb", endpoint_url=settings.dynamodb_endpoint_url)
    try:
        with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
            dynamodb.create_table(
                TableName=settings.quota_table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            )  # fmt: skip
        dynamodb.update_time_to_live(
            TableName=settings.quota_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    except (BotoCoreError, ClientError) as exc:
        msg = f"cannot prepare the quota table at {settings.dynamodb_endpoint_url}: {exc}"
        raise RuntimeError(msg) from exc


def start_verifier(stage: str, settings: Settings, env: Mapping[str, str], s3: str) -> Child | None:
    """The verifier's event path (devstack/events.py) on moto or the strict S3, each of
    which runs S3, EventBridge and SQS on one port; None on an S3 of the user's own
    (--s3-endpoint), which sends no events here."""
    if s3 not in ("moto", "strict"):
        print(
            "devstack: note: uploads are not verified on this S3 (no S3 events here); "
            "they stay 'uploaded', and quotas keep what they reserved. S3=moto and "
            "S3=strict run the verifier and the quotas' event path.",
            file=sys.stderr,
        )
        return None
    queues = events.wire(settings, env)
    args = [sys.executable, "-m", "devstack.events", "--stage", stage, "--queue-url", queues.verify]
    if queues.scan is not None:
        args += ["--scan-queue-url", queues.scan]
    return Child("the verifier", args, env)


def dev_token(user: str = "alice") -> str:
    """The unsigned token the upload page's dev sign-in makes: `chalice local` reads the
    claims of any JWT and verifies none (never a token for a deployed stage)."""

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': f'local-{user}', 'cognito:username': user})}."


def has_rules(settings: Settings) -> bool:
    """Whether a PUT needs more than the URL: a type, a size or a checksum (a byte quota
    reserves an undeclared size as the stage's most)."""
    return bool(settings.allowed_types or settings.max_bytes or settings.require_checksum
                or settings.require_known_types or settings.quota_bytes_per_day
                or settings.quota_stored_bytes)  # fmt: skip


def ready_message(
    api_url: str, s3_endpoint: str, settings: Settings, auth: AuthConfig, page_url: str
) -> str:
    """What to do next, as commands that work on this stage as they are, and, loudly,
    what the stage's authorization means here."""
    lines = [
        f"\ndevstack: ready. API {api_url}  S3 {s3_endpoint}  bucket {settings.bucket}",
        f"  upload page: {page_url}   API description: {page_url}openapi.yaml",
    ]
    header = ""
    if auth.required:
        lines.append(f"  TOKEN='{dev_token()}'   # the page's dev sign-in, user alice")
        header = '-H "Authorization: $TOKEN" '
    if has_rules(settings):
        # The CLI sends the type, size and SHA-256 the stage's rules ask for.
        token = ' --token "$TOKEN"' if auth.required else ""
        lines.append(f"  .venv/bin/presigned-upload upload photo.png --api {api_url}{token}")
    else:
        lines += [
            f'  T=$(curl -s {header}{api_url}/put-url); echo "$T"',
            '  curl -X PUT --upload-file README.md "$(echo "$T" | python3 -c '
            '\'import json,sys; print(json.load(sys.stdin)["PUT_URL"])\')"',
        ]
    if settings.quotas_on:
        limits = {"URLs a day": settings.quota_files_per_day,
                  "bytes a day": settings.quota_bytes_per_day,
                  "bytes stored": settings.quota_stored_bytes}  # fmt: skip
        shown = ", ".join(f"{name} {value}" for name, value in limits.items() if value)
        lines.append(f"  quotas per {'user' if auth.required else 'IP'}: {shown}; "
                     f"see GET {api_url}/quota")  # fmt: skip
    if auth.mode == "none":
        lines.append(
            "devstack: WARNING: AUTH_MODE=none: no authorization; anyone who can reach "
            f"{api_url} gets upload URLs. Never deploy a stage like this."
        )
    else:
        lines.append(
            f"devstack: AUTH_MODE={auth.mode}, but `chalice local` verifies no token: it "
            "reads the claims of any JWT in the Authorization header (see docs/authorization.md)."
        )
    lines.append("Ctrl-C stops everything.\n")
    return "\n".join(lines)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="local", choices=LOCAL_STAGES, help="chalice stage")
    parser.add_argument(
        "--s3",
        default="moto",
        choices=("moto", "strict"),
        help="the local S3: moto (default; checks no signature) or strict (LocalStack's S3, "
        "which refuses what AWS refuses; needs Python 3.13, installed on first use)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--s3-port", type=int, default=4566, help="port of the local S3")
    parser.add_argument("--api-port", type=int, default=8000, help="port of `chalice local`")
    parser.add_argument("--web-port", type=int, default=8001, help="port of the upload page")
    parser.add_argument(
        "--s3-endpoint",
        help="use this S3 (a local strict S3 such as LocalStack, or MinIO) instead of "
        "starting moto; the bucket is created there if missing. Credentials: test/test",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not restart the API when a file in the project changes (tests, benchmarks)",
    )
    args = parser.parse_args(argv)

    s3_endpoint = (args.s3_endpoint or f"http://{args.host}:{args.s3_port}").rstrip("/")
    env = child_environment(os.environ, s3_endpoint)
    # The strict S3 (or one of the user's) serves no DynamoDB: quotas get a moto server
    # of their own, started below if the stage has any.
    dynamodb_port = None if args.s3 == "moto" and args.s3_endpoint is None else _free_port()
    if dynamodb_port is not None:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://{args.host}:{dynamodb_port}"
    overrides = exported_settings(os.environ, stage_environment(args.stage))
    env["DEVSTACK_SETTINGS"] = json.dumps(overrides)
    stage_env = {**env, **stage_environment(args.stage), **overrides}
    try:
        settings = Settings.from_env(stage_env)
        origin = cors_allow_origin(stage_env)
        auth = AuthConfig.from_env(stage_env)
        log_level(stage_env)
        log_format(stage_env)
    except ConfigError as exc:
        print(
            f"devstack: error: {exc} (see .chalice/config.json, stage {args.stage!r})",
            file=sys.stderr,
        )
        return 2

    signal.signal(signal.SIGTERM, _raise_interrupt)
    procs: list[Child] = []
    try:
        if args.s3_endpoint is None:
            s3 = start_s3(args.s3, args.host, args.s3_port, env)
            procs.append(s3)
            wait_for_port(args.host, args.s3_port, s3, timeout=30 if args.s3 == "moto" else 120)
        create_bucket(settings, env, origin)
        if settings.quotas_on:
            if dynamodb_port is not None:
                table = Child("the quota table (moto's DynamoDB)",
                              [sys.executable, "-m", "devstack.moto_server", "-H", args.host,
                               "-p", str(dynamodb_port)], env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                procs.append(table)
                wait_for_port(args.host, dynamodb_port, table, timeout=30)
            create_quota_table(settings, env)
        verifier = None
        if settings.verify or settings.quotas_on:
            verifier = start_verifier(args.stage, settings, env, args.s3_endpoint or args.s3)
            if verifier is not None:
                procs.append(verifier)

        api = Child(
            "chalice local",
            [
                sys.executable,
                "-m",
                "devstack.chalice_local",
                "local",
                "--stage",
                args.stage,
                "--host",
                args.host,
                "--port",
                str(args.api_port),
                *(["--no-autoreload"] if args.no_reload else []),
            ],
            env,
        )
        procs.append(api)
        wait_for_port(args.host, args.api_port, api, timeout=60)
        api_url = f"http://{args.host}:{args.api_port}"
        try:
            page = web.serve(args.host, args.web_port, api_url, auth.mode,
                             settings.verify and verifier is not None, args.stage)  # fmt: skip
        except OSError as exc:
            msg = f"the upload page cannot listen on port {args.web_port}: {exc}"
            raise RuntimeError(msg) from exc
        atexit.register(page.shutdown)
        page_url = f"http://{args.host}:{args.web_port}/"
        print(ready_message(api_url, s3_endpoint, settings, auth, page_url), flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.2)
        dead = next(p for p in procs if p.poll() is not None)
        print(f"devstack: error: {dead.exit_message()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("devstack: stopping", file=sys.stderr)
        return 0
    except RuntimeError as exc:  # strict_s3.StrictS3Unavailable among them
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C (or a SIGTERM after the first) must not cut the shutdown short
        # and leave a child running: its own session would keep it alive.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    sys.exit(main())
