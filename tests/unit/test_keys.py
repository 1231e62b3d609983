from __future__ import annotations

import uuid

import pytest

from chalicelib.core.errors import UploadRejected
from chalicelib.core.keys import extension, new_upload_id, parse_upload_id, upload_id_in, upload_key


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


@pytest.mark.parametrize(
    ("filename", "ext"),
    [
        ("holiday.JPG", "jpg"),
        ("archive.tar.gz", "gz"),
        ("C:\\Users\\me\\report.PDF", "pdf"),
        ("../../etc/passwd", ""),
        ("../../x.sh/", ""),
        (".bashrc", ""),
        ("noext", ""),
        ("trailing.", ""),
        ("weird.p-d-f", ""),
        ("unicode.jpé", ""),
        ("long." + "a" * 16, "a" * 16),
        ("toolong." + "a" * 17, ""),
        ("a.b/../c.txt", "txt"),
        (None, ""),
        ("", ""),
    ],
)
def test_extension_keeps_only_a_short_alphanumeric_suffix(filename, ext):
    assert extension(filename) == ext


def test_upload_key_appends_the_extension():
    assert upload_key("put_folder/", "id", "png") == "put_folder/id.png"


def test_parse_upload_id_accepts_the_canonical_form_only():
    good = "3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b"
    assert parse_upload_id(good) == good
    for bad in [good.upper(), good + ".png", "../" + good, "", "x" * 36, "{" + good + "}"]:
        with pytest.raises(UploadRejected) as info:
            parse_upload_id(bad)
        assert str(info.value) == (
            f"upload id {bad[:64]!r} is not valid; allowed: a UUID as returned by /put-url, "
            "like '3f2b8c1e-9d4a-4e6b-8f7a-1c2d3e4f5a6b'"
        )


def test_a_key_this_service_names_gives_back_its_upload_id_and_no_other_does():
    upload_id = new_upload_id()
    assert upload_id_in("put_folder/u/", upload_key("put_folder/u/", upload_id, "png")) == upload_id
    assert upload_id_in("put_folder/u/", upload_key("put_folder/u/", upload_id)) == upload_id
    assert upload_id_in("put_folder/v/", upload_key("put_folder/u/", upload_id)) is None
    assert upload_id_in("put_folder/", f"put_folder/{upload_id}.tar.gz") is None
