"""Bytecode in the Lambda zip: `make package` compiles every module it ships.

Lambda's ``/var/task`` is read-only, so a module without a ``.pyc`` beside it is compiled
from source on every cold start, Chalice's 2,000-line ``app.py`` included. Measured at a
128 MB function's CPU share, that compiling is about a third of a cold ``GET /put-url``
(docs/benchmarks.md), so each ``.py`` in the zip gets its
``__pycache__/<name>.cpython-3XY.pyc``:

- compiled by the runtime's own Python version (``deploy.python``), since a ``.pyc``
  carries its version's magic number and a 3.11 one is ignored by 3.12;
- ``unchecked-hash``: Python uses it without comparing the source's mtime (every zip
  entry is dated 1980-01-01) or hashing the source. The ``.pyc`` and the source come from
  the same build, so there is nothing to check;
- with ``/var/task/...`` as the file name in tracebacks, where Lambda unpacks the zip.

Where that Python is not installed, the zip ships without bytecode and
:func:`add_bytecode` returns None; the caller says so. ``chalice deploy`` never ships
bytecode (it builds its own zip).
"""

from __future__ import annotations

import re
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

from infra.pythons import find_python

TASK_ROOT = "/var/task"  # where Lambda unpacks the zip
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the date Chalice gives every entry: reproducible zips


def runtime_version(runtime: str) -> tuple[int, int]:
    """``python3.12`` -> (3, 12)."""
    found = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if found is None:
        raise ValueError(f"not a Lambda Python runtime: {runtime!r}")
    return int(found[1]), int(found[2])


def compile_tree(root: Path, python: str, prefix: str = TASK_ROOT) -> list[Path]:
    """Compile every module under ``root`` with ``python`` (unchecked-hash ``.pyc``, the
    source path in tracebacks under ``prefix``); return the ``.pyc`` files."""
    subprocess.run(
        [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", prefix, str(root)],
        check=True, capture_output=True,
    )  # fmt: skip
    return sorted(root.rglob("*.pyc"))


def add_bytecode(zip_path: Path, runtime: str) -> int | None:
    """Rewrite ``zip_path`` with a ``.pyc`` for each of its modules, compiled for
    ``runtime``, and none other (Chalice copies whatever ``__pycache__`` the working tree
    has, compiled by another Python); return how many, or None when no Python of that
    version is installed here (the zip then holds no bytecode at all)."""
    python = find_python(runtime_version(runtime))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "task"
        rebuilt = Path(tmp) / "deployment.zip"
        with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(rebuilt, "w") as target:
            for entry in source.infolist():
                if entry.filename.endswith(".pyc") or "__pycache__/" in entry.filename:
                    continue
                data = source.read(entry)
                target.writestr(entry, data)
                if entry.filename.endswith(".py"):
                    (root / entry.filename).parent.mkdir(parents=True, exist_ok=True)
                    (root / entry.filename).write_bytes(data)
            compiled = [] if python is None else compile_tree(root, python)
            for pyc in compiled:
                entry = zipfile.ZipInfo(pyc.relative_to(root).as_posix(), ZIP_DATE)
                entry.external_attr = (stat.S_IFREG | 0o644) << 16  # a regular file
                entry.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(entry, pyc.read_bytes())
        rebuilt.replace(zip_path)
    return None if python is None else len(compiled)
