"""How a file is cut into parts. Pure arithmetic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from presigned_upload.limits import MAX_OBJECT_BYTES, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, MiB

DEFAULT_PART_SIZE = 8 * MiB
DEFAULT_THRESHOLD = 64 * MiB


@dataclass(frozen=True)
class Part:
    """Bytes ``offset`` to ``offset + size`` of the file, uploaded as part ``number``."""

    number: int
    offset: int
    size: int


def part_size(file_size: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The part size for a file: ``preferred``, raised to S3's 5 MiB minimum, and raised
    again (to whole MiB) if the file would otherwise need more than 10,000 parts."""
    if not 0 <= file_size <= MAX_OBJECT_BYTES:
        raise ValueError(f"a file of {file_size} bytes cannot be one S3 object (max 5 TiB)")
    size = max(preferred, MIN_PART_SIZE)
    if -(-file_size // size) > MAX_PARTS:
        size = -(-file_size // MAX_PARTS)
        size = -(-size // MiB) * MiB
    if size > MAX_PART_SIZE:
        raise ValueError(f"part size {size} is over S3's 5 GiB maximum")
    return size


def plan(file_size: int, size: int) -> list[Part]:
    """The parts of a file of ``file_size`` bytes; at least one, even for an empty file."""
    if file_size == 0:
        return [Part(1, 0, 0)]
    return [
        Part(index + 1, offset, min(size, file_size - offset))
        for index, offset in enumerate(range(0, file_size, size))
    ]
