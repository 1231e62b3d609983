"""Finding a given CPython minor version on this machine (``python3.X`` on PATH, pyenv's
versions, the usual system paths), whichever is the selected one: the strict S3 needs
3.13, and `make package` compiles the zip's bytecode with the Lambda runtime's own
version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def find_python(version: tuple[int, int], candidates: list[str] | None = None) -> str | None:
    """The path of a Python ``version`` (major, minor) interpreter, or None."""
    name = f"python{version[0]}.{version[1]}"
    home = Path.home()
    candidates = candidates or [
        name,
        *sorted(
            str(p) for p in home.glob(f".pyenv/versions/{version[0]}.{version[1]}.*/bin/python")
        ),
        f"/usr/local/bin/{name}",
        f"/usr/bin/{name}",
    ]
    check = f"import sys; sys.exit(sys.version_info[:2] != {tuple(version)!r})"
    for candidate in candidates:
        path = shutil.which(candidate) or candidate
        if not Path(path).exists():
            continue
        if subprocess.run([path, "-c", check], capture_output=True).returncode == 0:
            return path
    return None
