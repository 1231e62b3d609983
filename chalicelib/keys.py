"""How upload object keys are named. Pure functions: no I/O, no settings lookups."""

from __future__ import annotations

import uuid


def new_upload_id() -> str:
    """A fresh upload id: a random (version 4) UUID in canonical lower-case form."""
    return str(uuid.uuid4())


def upload_key(prefix: str, upload_id: str) -> str:
    """The object key an upload is stored under: ``<prefix><uuid>``, as the original service.

    ``prefix`` comes from validated Settings and ends in '/'; ``upload_id`` is a canonical
    UUID that the server generated, so the key can never leave the prefix.
    """
    return f"{prefix}{upload_id}"
