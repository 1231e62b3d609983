"""S3's limits that the client plans parts by. The server keeps its own copy
(chalicelib/multipart/service.py, chalicelib/core/settings.py): the two packages share no code, and
tests/unit/test_client_limits.py checks that the values agree."""

from __future__ import annotations

MiB = 1024**2
GiB = 1024**3
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_OBJECT_BYTES = 5 * 1024**4
# The most part URLs the API signs in one batch call.
MAX_BATCH = 100
