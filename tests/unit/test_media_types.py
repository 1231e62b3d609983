"""The type and name tables: in step with filetype's, and what a wildcard and a desktop
name admit."""

from __future__ import annotations

import filetype  # type: ignore[import-untyped]
import pytest

from chalicelib.core.media_types import (
    _FILETYPE_TYPES,
    SIGNATURE_TYPES,
    WILDCARD_TYPES,
    desktop_extension,
    normal,
)


def test_the_signature_table_is_filetypes_own():
    # A filetype upgrade that adds or renames a type fails here: copy its new table.
    assert {normal(kind.mime) for kind in filetype.types} == _FILETYPE_TYPES


def test_aliases_of_known_formats_are_known_too():
    assert {"image/jpg", "image/pjpeg", "audio/wav"} <= SIGNATURE_TYPES
    assert "image/x-foo" not in SIGNATURE_TYPES


@pytest.mark.parametrize(
    "media_type",
    ["application/x-msdownload", "application/x-executable", "application/x-shockwave-flash",
     "application/octet-stream", "binary/octet-stream", "application/wasm"],
)  # fmt: skip
def test_no_wildcard_admits_a_program_or_an_untyped_upload(media_type):
    assert media_type in SIGNATURE_TYPES
    assert media_type not in WILDCARD_TYPES


@pytest.mark.parametrize(
    ("name", "ext"),
    [("invoice.hta", "hta"), ("INVOICE.HTA", "hta"), ("invoice.hta.", "hta"),
     ("invoice.hta . ", "hta"), ("a/b\\setup.exe", "exe"), (".bat", "bat"), ("x.mhtml", "mhtml"),
     ("report.pdf", ""), ("setup.exe.png", ""), ("exe", ""), ("", ""), (None, "")],
)  # fmt: skip
def test_a_desktop_extension_is_found_as_windows_would_run_it(name, ext):
    assert desktop_extension(name) == ext
