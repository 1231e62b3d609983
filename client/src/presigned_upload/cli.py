"""Upload a file through the presigned-upload API, straight to S3.

    presigned-upload upload FILE [--api URL] [--token TOKEN] [--resume] [--wait] [--json] ...

Files up to --threshold go in one presigned PUT; larger ones in parallel parts
(multipart), each retried with backoff. Ctrl-C leaves a multipart upload resumable
(run the same command with --resume), or aborts it with --abort-on-interrupt. --wait
then waits for the stage's verdict (type check, malware scan).
Exit status: 0 uploaded (with --wait: verified), 1 failed, 3 rejected (--wait), 4 no
verdict within --wait-timeout (--wait), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from presigned_upload.api import Api, ApiError
from presigned_upload.iam import SigV4Auth, region_of
from presigned_upload.parts import DEFAULT_PART_SIZE, DEFAULT_THRESHOLD
from presigned_upload.state import StateStore
from presigned_upload.transfer import (
    CHECKSUMS,
    OLD_MD5_CHOICES,
    Interrupted,
    Options,
    TransferError,
    Uploader,
)
from presigned_upload.verdict import DEFAULT_TIMEOUT, wait_for_verdict

MiB = 1024**2
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def session(concurrency: int) -> requests.Session:
    """A session with a connection for every thread (requests keeps 10 by default)."""
    http = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, concurrency))
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="presigned-upload", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = p.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upload", help="upload one file")
    up.add_argument("file", type=Path)
    up.add_argument(
        "--api",
        default=os.environ.get("UPLOAD_API_URL", "http://127.0.0.1:8000"),
        help="the API's base URL (env UPLOAD_API_URL; default %(default)s)",
    )
    up.add_argument(
        "--token",
        default=os.environ.get("UPLOAD_API_TOKEN"),
        help="sent as the Authorization header, e.g. a Cognito ID token (env UPLOAD_API_TOKEN)",
    )
    up.add_argument(
        "--iam",
        action="store_true",
        help="sign API requests with your AWS credentials (stages with AUTH_MODE=iam)",
    )
    up.add_argument("--region", help="with --iam: the API's region (default: from its URL)")
    up.add_argument("--concurrency", type=int, default=8, help="parts in flight (default 8)")
    up.add_argument(
        "--part-size",
        type=int,
        default=DEFAULT_PART_SIZE // MiB,
        metavar="MIB",
        help="part size in MiB, at least 5 (default %(default)s)",
    )
    up.add_argument(
        "--threshold",
        type=int,
        default=DEFAULT_THRESHOLD // MiB,
        metavar="MIB",
        help="larger files go multipart (default %(default)s MiB)",
    )
    up.add_argument("--content-type", help="default: guessed from the file name")
    up.add_argument(
        "--checksum",
        choices=CHECKSUMS,
        default="auto",
        help="what S3 checks every byte against: sha256 (also stored with the object), md5, "
        "or none; auto (default) is sha256",
    )
    # The option's name before SHA-256 (always -> md5, never -> none); still accepted.
    up.add_argument("--md5", choices=tuple(OLD_MD5_CHOICES), help=argparse.SUPPRESS)
    up.add_argument("--retries", type=int, default=5, help="per request (default 5)")
    up.add_argument(
        "--resume", action="store_true", help="continue this file's interrupted multipart upload"
    )
    up.add_argument(
        "--abort-on-interrupt",
        action="store_true",
        help="on Ctrl-C, abort the multipart upload instead of keeping it",
    )
    up.add_argument("--state-dir", type=Path, help="where resume state is kept")
    up.add_argument(
        "--wait",
        action="store_true",
        help="then wait for the stage's verdict (verified or rejected); exit 3 if rejected",
    )
    up.add_argument(
        "--wait-timeout",
        type=float,
        metavar="SECONDS",
        help=f"with --wait: give up after this long, exit 4 (default {DEFAULT_TIMEOUT:.0f})",
    )
    up.add_argument("--json", action="store_true", help="print the result as JSON")
    up.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _version() -> str:
    try:
        return metadata.version("presigned-upload-client")
    except metadata.PackageNotFoundError:  # run from a checkout without installing it
        return "unknown"


def problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, in one line, or None."""
    if not args.file.is_file():
        return f"{args.file} is not a file"
    if args.concurrency < 1 or args.part_size < 5 or args.retries < 0:
        return "--concurrency >= 1, --part-size >= 5, --retries >= 0"
    if args.wait_timeout is not None:
        if not 0 < args.wait_timeout <= 86400:
            return "--wait-timeout: seconds, more than 0 and at most 86400"
        if not args.wait:
            return "--wait-timeout without --wait; allowed: --wait --wait-timeout SECONDS"
    api = urlsplit(args.api)
    if api.scheme not in ("http", "https") or not api.hostname:
        return (f"--api {args.api[:80]!r} is not a URL; allowed: http(s)://host[:port][/path], "
                "like http://127.0.0.1:8000")  # fmt: skip
    if args.token and not _HEADER_VALUE.fullmatch(args.token):
        return ("the token holds characters an Authorization header cannot carry; allowed: "
                "printable ASCII, like a JWT")  # fmt: skip
    return None


def resume_hint(args: argparse.Namespace) -> str:
    """The command that resumes, with the options it needs; never the token itself."""
    words = ["presigned-upload", "upload", str(args.file), "--api", args.api, "--resume"]
    if args.iam:
        words += ["--iam", *(["--region", args.region] if args.region else [])]
    if args.state_dir is not None:
        words += ["--state-dir", str(args.state_dir)]
    hint = f"resume with: {shlex.join(words)}"
    if args.token:
        hint += " (with the same --token, or UPLOAD_API_TOKEN set)"
    return hint


def main(argv: list[str] | None = None, http: requests.Session | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _upload(args, http)
    except KeyboardInterrupt:  # before an upload started, or after it ended
        print("\nupload: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure is one line, never a traceback
        print(f"upload: error: unexpected {type(exc).__name__}: {str(exc)[:300]}",
              file=sys.stderr)  # fmt: skip
        return 1


def _upload(args: argparse.Namespace, http: requests.Session | None) -> int:
    wrong = problem(args)
    if wrong is not None:
        print(f"upload: error: {wrong}", file=sys.stderr)
        return 1
    http = http or session(args.concurrency)
    options = Options(
        concurrency=args.concurrency,
        part_size=args.part_size * MiB,
        threshold=args.threshold * MiB,
        retries=args.retries,
        checksum=args.checksum,
        md5=args.md5,
        content_type=args.content_type,
        abort_on_interrupt=args.abort_on_interrupt,
    )
    size = args.file.stat().st_size
    bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=args.file.name,
               disable=True if args.no_progress else None, file=sys.stderr)  # fmt: skip
    lock = threading.Lock()

    def progress(n: int) -> None:
        with lock:
            bar.update(n)

    auth = None
    if args.iam:
        region = args.region or region_of(args.api)
        if region is None:
            print("upload: error: --iam needs --region for this API URL", file=sys.stderr)
            return 1
        try:
            auth = SigV4Auth(region)
        except ValueError as exc:
            print(f"upload: error: {exc}", file=sys.stderr)
            return 1
    api = Api(args.api, http, args.token, auth=auth, retries=args.retries)
    uploader = Uploader(api, session=http,
                        options=options, store=StateStore(args.state_dir),
                        progress=progress)  # fmt: skip
    started = time.monotonic()
    try:
        result = uploader.upload(args.file, resume=args.resume)
    except Interrupted as exc:
        bar.close()
        hint = resume_hint(args) if exc.resumable else "the multipart upload was aborted"
        print(f"\nupload: interrupted; {hint}", file=sys.stderr)
        return 130
    except (ApiError, TransferError, OSError) as exc:
        bar.close()
        print(f"upload: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while starting or checking: a started upload still resumes
        bar.close()
        print("\nupload: interrupted", file=sys.stderr)
        return 130
    bar.close()
    seconds = time.monotonic() - started
    result["seconds"] = round(seconds, 3)
    if not args.json:
        if result.get("already_complete"):
            print(f"{args.file} was already uploaded -> {result['key']} (UUID "
                  f"{result['UUID']}); its completion had been interrupted")  # fmt: skip
        else:
            rate = size / MiB / seconds if seconds else 0.0
            # Flushed: with --wait, the verdict may take a while to follow.
            print(f"uploaded {args.file} -> {result['key']} (UUID {result['UUID']}), "
                  f"{size} bytes in {seconds:.1f} s, {rate:.1f} MiB/s", flush=True)  # fmt: skip
    code = 0
    if args.wait:
        code = _wait(args, api, result)
    if args.json:
        print(json.dumps(result))
    return code


def _wait(args: argparse.Namespace, api: Api, result: dict[str, object]) -> int:
    """Wait for the verdict, put it in ``result``, say it; the exit status."""
    timeout = DEFAULT_TIMEOUT if args.wait_timeout is None else args.wait_timeout
    try:
        verdict = wait_for_verdict(api, str(result["UUID"]), timeout)
    except ApiError as exc:
        print(f"upload: error: uploaded, but its status could not be read: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("\nupload: interrupted while waiting for the verdict (the upload is done)",
              file=sys.stderr)  # fmt: skip
        return 130
    result["verdict"] = verdict
    status = verdict.get("status")
    if status == "verified":
        if not args.json:
            print("verified")
        return 0
    if status == "rejected":
        print(f"upload: rejected: {verdict.get('reason', '')}", file=sys.stderr)
        return 3
    print(f"upload: no verdict within {timeout:g} s (status: {status})",
          file=sys.stderr)  # fmt: skip
    return 4


def main_exit() -> None:
    """The `presigned-upload` console script."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
