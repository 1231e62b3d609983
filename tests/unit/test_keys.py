from __future__ import annotations

import uuid

from chalicelib.keys import new_upload_id, upload_key


def test_upload_key_is_prefix_then_uuid_like_the_original_service():
    upload_id = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
    assert upload_key("put_folder/", upload_id) == "put_folder/3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"


def test_upload_key_keeps_nested_prefixes():
    assert upload_key("a/b/", "x") == "a/b/x"


def test_new_upload_id_is_a_canonical_random_uuid4():
    ids = {new_upload_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert str(parsed) == value  # canonical: lower-case, hyphenated, no braces
