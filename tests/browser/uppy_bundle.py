"""Uppy's packages, installed from tests/browser/uppy/package-lock.json and bundled with
esbuild into build/uppy/, and a static server for the bundle: for the browser tests and
the browser benchmark (bench/browser_throughput.py)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent.parent
HARNESS = PROJECT / "tests" / "browser" / "uppy"
BUNDLE = PROJECT / "build" / "uppy"


def build(npm: str) -> Path:
    """``npm ci`` when the lockfile changed, then the bundle; its directory."""
    lock = HARNESS / "package-lock.json"
    installed = HARNESS / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HARNESS, check=True,
                       capture_output=True)  # fmt: skip
    BUNDLE.mkdir(parents=True, exist_ok=True)
    esbuild = HARNESS / "node_modules" / ".bin" / "esbuild"
    subprocess.run([str(esbuild), "entry.js", "--bundle", "--format=iife", "--log-level=warning",
                    f"--outfile={BUNDLE / 'harness.js'}"], cwd=HARNESS, check=True)  # fmt: skip
    css = [HARNESS / "node_modules" / "@uppy" / name / "dist" / "style.min.css"
           for name in ("core", "dashboard")]  # fmt: skip
    (BUNDLE / "dashboard.css").write_text("\n".join(p.read_text() for p in css))
    shutil.copy(HARNESS / "index.html", BUNDLE / "index.html")
    return BUNDLE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(directory: Path, port: int) -> ThreadingHTTPServer:
    """Serve ``directory`` on 127.0.0.1:``port`` from a daemon thread."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", port), partial(_QuietHandler, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
