"""Running a benchmark's child process at a Lambda function's share of a CPU.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU, so a
128 MB function gets about 7.2 % of a core and 256 MB about 14.5 %. Here a child is put
in a cgroup whose CPU quota is that share of each 100 ms period (cgroup v1
``cpu.cfs_quota_us``, or v2 ``cpu.max``), before it executes anything: its imports and
its first request run as slowly as they would in Lambda.

Creating a cgroup needs a writable cgroup filesystem (root, or a delegated subtree).
Where there is none, :func:`available` says why, and the benchmarks print whole-core
figures only, saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# Lambda: 1,769 MB of memory is one full vCPU; CPU scales linearly with memory.
MB_PER_VCPU = 1769
PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def share(memory_mb: int) -> float:
    """The fraction of one core a function of ``memory_mb`` gets."""
    return memory_mb / MB_PER_VCPU


class CpuShare:
    """A cgroup limited to a Lambda function's CPU share; ``preexec`` moves a child into
    it. Remove it with :meth:`close` (a cgroup can be removed once empty)."""

    def __init__(self, memory_mb: int, root: Path | None = None) -> None:
        self.memory_mb = memory_mb
        self.quota_us = max(1000, round(PERIOD_US * share(memory_mb)))
        base, v2 = _hierarchy(root)
        self.path = base / f"presigned-upload-bench-{memory_mb}mb-{os.getpid()}"
        self.path.mkdir(exist_ok=True)
        if v2:
            (self.path / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}\n")
        else:
            (self.path / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (self.path / "cpu.cfs_quota_us").write_text(f"{self.quota_us}\n")

    def preexec(self) -> Callable[[], None]:
        """For ``subprocess``'s ``preexec_fn``: the child joins the cgroup before exec."""
        procs = self.path / "cgroup.procs"

        def join() -> None:
            procs.write_text(f"{os.getpid()}\n")

        return join

    def close(self) -> None:
        self.path.rmdir()


def _hierarchy(root: Path | None) -> tuple[Path, bool]:
    """Where to make the cgroup, and whether it is cgroup v2."""
    if root is not None:
        return root, (root / "cgroup.controllers").exists()
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, False
    return V2, True


def available() -> str | None:
    """None when a CPU quota can be set here; else why not, in one line."""
    try:
        probe = CpuShare(128)
    except OSError as exc:
        return f"no CPU quota here ({type(exc).__name__}: {exc.strerror or exc})"
    probe.close()
    return None
