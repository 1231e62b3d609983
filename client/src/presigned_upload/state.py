"""What `--resume` needs to continue an interrupted multipart upload, kept on disk.

One small JSON file per local file (named by a hash of its absolute path), written when
the upload is created and deleted when it completes or is aborted. The parts themselves
are not recorded: on resume, S3's own list of parts is the truth, checked part by part
against the local bytes' SHA-256 (S3's stored checksum) or MD5 (its ETag).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ResumeState:
    path: str
    size: int
    mtime_ns: int
    api: str
    key: str
    upload_id: str
    uuid: str
    part_size: int
    checksum: str = "none"  # what each part carries: "sha256", "md5" or "none"

    @classmethod
    def for_file(
        cls, path: Path, api: str, key: str, upload_id: str, uuid: str, part_size: int,
        checksum: str = "none",
    ) -> ResumeState:  # fmt: skip
        stat = path.stat()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns, api, key, upload_id,
                   uuid, part_size, checksum)  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResumeState:
        """A saved state; one saved by a version before checksums, with ``part_md5``,
        continues with MD5 parts if it sent them."""
        data = dict(data)
        if "part_md5" in data:
            data["checksum"] = "md5" if data.pop("part_md5") else "none"
        return cls(**data)

    def matches(self, path: Path) -> bool:
        """Whether ``path`` is still the file this upload started from."""
        stat = path.stat()
        return (self.size, self.mtime_ns) == (stat.st_size, stat.st_mtime_ns)


class StateStore:
    """Resume states in ``directory`` (default ``~/.cache/presigned-upload``)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory or Path.home() / ".cache" / "presigned-upload"

    def _file(self, path: Path) -> Path:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
        return self._dir / f"{name}.json"

    def load(
        self, path: Path, api: str | None = None, check_file: bool = True
    ) -> ResumeState | None:
        """The state for ``path``; None if there is none, or (with ``check_file``) if the
        file changed since, or it was for another API."""
        try:
            state = ResumeState.from_json(json.loads(self._file(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if check_file and (not state.matches(path) or (api is not None and state.api != api)):
            return None
        return state

    def save(self, path: Path, state: ResumeState) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        target = self._file(path)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(state)))
        os.replace(temporary, target)

    def delete(self, path: Path) -> None:
        self._file(path).unlink(missing_ok=True)
