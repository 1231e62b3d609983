from __future__ import annotations

import pytest

from chalicelib.core.errors import UploadRejected
from chalicelib.core.rules import (
    POST_PARAMETERS,
    PUT_PARAMETERS,
    UploadRequest,
    check_form_upload_allowed,
    expect_no_parameters,
    filename_from_metadata,
    filename_metadata,
    parse_request,
    put_headers,
    type_allowed,
)
from chalicelib.core.settings import Settings

OPEN = Settings(bucket="my-uploads", region="eu-west-1")
STRICT = OPEN._replace(
    allowed_types=("image/*", "application/pdf"),
    max_bytes=10 * 1024 * 1024,
    require_checksum=True,
    no_overwrite=True,
)
EMPTY_MD5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # md5(b"")
EMPTY_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # sha256(b"")


def parse(settings=OPEN, allowed=PUT_PARAMETERS, **params):
    return parse_request({k: [v] for k, v in params.items()}, settings, allowed)


def refused(settings=OPEN, allowed=PUT_PARAMETERS, **params) -> str:
    with pytest.raises(UploadRejected) as info:
        parse(settings, allowed, **params)
    return str(info.value)


def test_no_parameters_and_no_rules_means_no_headers_so_plain_curl_works():
    assert parse() == UploadRequest()
    assert put_headers(UploadRequest(), OPEN) == {}


def test_every_rule_becomes_exactly_one_header_to_send():
    request = parse(
        STRICT,
        filename="Cat photo.PNG",
        content_type="image/png",
        size="1234",
        md5=EMPTY_MD5,
        disposition="attachment",
    )
    assert put_headers(request, STRICT) == {
        "Content-Type": "image/png",
        "Content-Length": "1234",
        "Content-MD5": EMPTY_MD5,
        "Content-Disposition": 'attachment; filename="Cat photo.PNG"; '
        "filename*=UTF-8''Cat%20photo.PNG",
        "x-amz-meta-filename": "Cat%20photo.PNG",
        "If-None-Match": "*",
    }
    assert request.extension == "png"


def test_filename_alone_is_stored_with_the_object_as_signed_metadata():
    request = parse(filename="report.pdf")
    assert (request.filename, request.extension, put_headers(request, OPEN)) == (
        "report.pdf",
        "pdf",
        {"x-amz-meta-filename": "report.pdf"},
    )


@pytest.mark.parametrize(
    ("filename", "stored"),
    [("a b.txt", "a%20b.txt"), (" x ", "%20x%20"), ("100%.csv", "100%25.csv"),
     ("naïve/../é.pdf", "na%C3%AFve%2F..%2F%C3%A9.pdf")],
)  # fmt: skip
def test_stored_filename_is_ascii_and_reads_back_exactly(filename, stored):
    assert filename_metadata(filename) == stored
    assert filename_from_metadata({"filename": stored}) == filename


def test_objects_stored_without_a_name_have_none():
    assert filename_from_metadata({}) is None
    assert filename_from_metadata({"other": "x"}) is None


def test_non_ascii_filename_gets_an_ascii_fallback_and_an_exact_utf8_name():
    request = parse(filename='naïve "résumé".pdf', disposition="inline",
                    content_type="application/pdf")  # fmt: skip
    assert request.content_disposition() == (
        'inline; filename="na_ve _r_sum__.pdf"; '
        "filename*=UTF-8''na%C3%AFve%20%22r%C3%A9sum%C3%A9%22.pdf"
    )


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    # a wildcard never admits a scriptable type: SVG must be listed exactly
    [("image/png", True), ("IMAGE/JPEG", True), ("image/svg+xml; charset=utf-8", False),
     ("application/pdf", True), ("application/pdfx", False), ("text/html", False),
     ("imagex/png", False)],
)  # fmt: skip
def test_allowlist_matches_exact_types_and_subtype_wildcards(content_type, allowed):
    if allowed:
        assert parse(STRICT, content_type=content_type, size="1", md5=EMPTY_MD5).content_type == (
            content_type
        )
    else:
        assert refused(STRICT, content_type=content_type, size="1", md5=EMPTY_MD5) == (
            f"content_type {content_type!r} is not allowed; allowed: image/*, application/pdf "
            "(a wildcard admits the types known by their bytes, never a page, script or program)"
        )


def test_allowlist_requires_a_content_type():
    assert refused(STRICT, size="1", md5=EMPTY_MD5) == (
        "content_type is required; allowed: image/*, application/pdf"
    )


@pytest.mark.parametrize(
    "value",
    ["png", "image/", "text/html\r\nX-Evil: 1", "a/b;", "a" * 300, 'a/b; x="é"', 'a/b; x="\\"'],
)
def test_malformed_content_type_is_refused(value):
    assert refused(content_type=value) == (
        f"content_type {value[:80]!r} is not a media type; allowed: 'type/subtype' with "
        "optional '; name=value' parameters, like 'image/png'"
    )


def test_max_bytes_requires_a_size():
    assert refused(STRICT, content_type="image/png", md5=EMPTY_MD5) == (
        "size is required: the file's exact length in bytes; allowed: 0 to 10485760"
    )


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("10485761", "size 10485761 is too large; allowed: 0 to 10485760"),
        ("-1", "size '-1' is not a whole number of bytes; allowed: 0 to 10485760"),
        ("1e6", "size '1e6' is not a whole number of bytes; allowed: 0 to 10485760"),
        ("", "size '' is not a whole number of bytes; allowed: 0 to 10485760"),
        ("9" * 5000, f"size {'9' * 40!r} is not a whole number of bytes; allowed: 0 to 10485760"),
    ],
)
def test_bad_sizes_are_refused(size, message):
    assert refused(STRICT, content_type="image/png", md5=EMPTY_MD5, size=size) == message


def test_size_limits_are_inclusive():
    assert parse(STRICT, content_type="image/png", md5=EMPTY_MD5, size="10485760").size == 10485760
    assert parse(STRICT, content_type="image/png", md5=EMPTY_MD5, size="0").size == 0


def test_without_a_limit_size_is_capped_at_s3s_single_put_maximum():
    assert refused(size=str(5 * 1024**3 + 1)) == (
        "size 5368709121 is too large; allowed: 0 to 5368709120 "
        "(larger files need a multipart upload: POST /s3/multipart)"
    )


def test_a_limit_below_5_gib_gives_no_multipart_hint():
    assert refused(STRICT, content_type="image/png", md5=EMPTY_MD5, size="10485761") == (
        "size 10485761 is too large; allowed: 0 to 10485760"
    )


def test_a_checksum_is_required_when_configured_and_either_kind_meets_it():
    assert refused(STRICT, content_type="image/png", size="1") == (
        "a checksum of the file's bytes is required (UPLOAD_REQUIRE_CHECKSUM is on); allowed: "
        "sha256 (the base64 of the 32-byte SHA-256 digest, which browsers compute with "
        "crypto.subtle.digest) or md5 (the base64 of the 16-byte MD5 digest), or both"
    )
    png = {"content_type": "image/png", "size": "0"}
    assert parse(STRICT, **png, sha256=EMPTY_SHA256).sha256 == EMPTY_SHA256
    assert parse(STRICT, **png, md5=EMPTY_MD5).md5 == EMPTY_MD5
    both = parse(STRICT, **png, md5=EMPTY_MD5, sha256=EMPTY_SHA256)
    assert put_headers(both, STRICT) == {
        "Content-Type": "image/png",
        "Content-Length": "0",
        "Content-MD5": EMPTY_MD5,
        "x-amz-checksum-sha256": EMPTY_SHA256,
        "If-None-Match": "*",
    }


@pytest.mark.parametrize(
    "md5", ["abc", "1B2M2Y8AsgTpgAmY7PhCfg", "1B2M2Y8AsgTpgAmY7PhCfg==x", "AAAA", "!" * 24,
            "d41d8cd98f00b204e9800998ecf8427e", EMPTY_SHA256],
)  # fmt: skip
def test_md5_must_be_base64_of_sixteen_bytes(md5):
    assert refused(md5=md5) == (
        f"md5 {md5[:60]!r} is not valid; allowed: the base64 of the 16-byte MD5 "
        "digest, like '1B2M2Y8AsgTpgAmY7PhCfg=='"
    )


@pytest.mark.parametrize(
    "sha256", [EMPTY_MD5, EMPTY_SHA256[:-1], EMPTY_SHA256 + "A", "=" * 44,
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
)  # fmt: skip
def test_sha256_must_be_base64_of_thirty_two_bytes(sha256):
    assert refused(sha256=sha256) == (
        f"sha256 {sha256[:60]!r} is not valid; allowed: the base64 of the 32-byte SHA-256 "
        "digest, like '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    )


def test_a_lone_surrogate_in_a_checksum_is_refused_as_not_text():
    assert refused(sha256="\ud800" * 44) == "parameter 'sha256' is not valid Unicode text"


def test_sha256_is_a_signed_header_never_a_query_parameter():
    request = parse(sha256="LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".replace("+", " "))
    assert put_headers(request, OPEN) == {
        "x-amz-checksum-sha256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
    }


def test_md5_plus_sign_sent_unencoded_still_parses():
    # '+' in a query string decodes to ' '; base64 has no spaces, so it is restored.
    assert parse(md5="rL0Y20zC+Fzt72VPzMSk2A==".replace("+", " ")).md5 == (
        "rL0Y20zC+Fzt72VPzMSk2A=="
    )


def test_unknown_parameters_are_refused_with_the_allowed_list():
    assert refused(contenttype="image/png") == (
        "unknown parameter 'contenttype'; allowed: content_type, disposition, filename, md5, "
        "sha256, size"
    )


def test_md5_and_size_are_not_parameters_of_a_form_upload():
    assert refused(allowed=POST_PARAMETERS, size="5") == (
        "unknown parameter 'size'; allowed: content_type, disposition, filename"
    )


def test_repeated_parameters_are_refused():
    with pytest.raises(UploadRejected) as info:
        parse_request({"size": ["1", "2"]}, OPEN, PUT_PARAMETERS)
    assert str(info.value) == "parameter 'size' was given 2 times; give it once"


def test_routes_without_parameters_refuse_any():
    expect_no_parameters({})
    with pytest.raises(UploadRejected) as info:
        expect_no_parameters({"x": ["1"]})
    assert str(info.value) == "unknown parameter 'x'; allowed: none"


@pytest.mark.parametrize("filename", ["", "a\x00b", "line\nbreak", "x" * 256])
def test_bad_filenames_are_refused(filename):
    assert refused(filename=filename) == (
        "filename must be 1 to 255 characters with no control characters; only its "
        "extension is used in the key"
    )


def test_disposition_needs_a_filename_and_a_known_kind():
    assert refused(disposition="attachment") == (
        "disposition needs filename: the name to download the file as"
    )
    assert refused(filename="a.txt", disposition="evil") == (
        "disposition 'evil' is not valid; allowed: attachment, inline"
    )


def test_form_uploads_are_refused_when_rules_need_signed_headers():
    check_form_upload_allowed(OPEN)
    with pytest.raises(UploadRejected) as info:
        check_form_upload_allowed(STRICT)
    assert str(info.value) == (
        "browser-form uploads are off because UPLOAD_REQUIRE_CHECKSUM and UPLOAD_NO_OVERWRITE are "
        "on, which a POST policy cannot enforce; allowed: /put-url with the headers it returns"
    )


def test_a_lone_surrogate_is_refused_before_it_reaches_a_header():
    assert refused(filename="a\ud800b.txt", disposition="inline") == (
        "parameter 'filename' is not valid Unicode text"
    )


def test_svg_is_allowed_when_listed_exactly():
    settings = Settings(bucket="my-uploads", region="eu-west-1",
                        allowed_types=("image/*", "image/svg+xml"))  # fmt: skip
    assert parse(settings, content_type="image/svg+xml").content_type == "image/svg+xml"


@pytest.mark.parametrize(
    "content_type", ["text/html", "image/svg+xml", "application/xhtml+xml", "text/javascript",
                     "application/rss+xml", None],
)  # fmt: skip
def test_inline_is_refused_for_scriptable_or_unsigned_types(content_type):
    params = {"filename": "a.x", "disposition": "inline"}
    if content_type:
        params["content_type"] = content_type
    assert refused(**params) == (
        f"disposition 'inline' is not allowed for {content_type or 'an untyped upload'}: a "
        "browser would run its script; allowed: 'attachment', or 'inline' with a "
        "content_type that is not HTML, SVG, XML or JavaScript"
    )


PROD_TYPES = STRICT._replace(require_checksum=False, max_bytes=None)


@pytest.mark.parametrize(
    ("allowed_types", "content_type", "allowed"),
    [(("image/*",), "image/png", True), (("image/*",), "image/x-foo", False),
     (("image/*", "image/x-foo"), "image/x-foo", True),
     (("*/*",), "multipart/x-mixed-replace", False),
     (("multipart/*",), "multipart/x-mixed-replace", False),
     (("*/*",), "text/plain", False), (("*/*",), "video/mp4", True),
     (("application/*",), "application/x-msdownload", False),
     (("application/*",), "application/octet-stream", False),
     (("application/x-msdownload",), "application/x-msdownload", True)],
)  # fmt: skip
def test_a_wildcard_admits_only_types_known_by_their_bytes(allowed_types, content_type, allowed):
    settings = PROD_TYPES._replace(allowed_types=allowed_types)
    assert type_allowed(content_type, settings) is allowed


@pytest.mark.parametrize(
    ("name", "ext"),
    [("invoice.hta", "hta"), ("Invoice.HTA.", "hta"), ("run.vbs", "vbs"), ("a.bat", "bat"),
     ("x.cmd", "cmd"), ("p.ps1", "ps1"), ("s.scr", "scr"), ("l.lnk", "lnk"), ("j.jar", "jar"),
     ("setup.exe", "exe"), ("i.msi", "msi"), ("d.dll", "dll"), ("r.reg", "reg"),
     ("page.mht", "mht"), ("page.mhtml", "mhtml"), ("w.wsf", "wsf"), ("e.vbe", "vbe")],
)  # fmt: skip
def test_a_name_that_runs_on_a_desktop_is_refused_where_its_type_is_not_listed(name, ext):
    message = refused(OPEN, filename=name, content_type="image/png")
    assert message.startswith(
        f"filename ends in .{ext}, which runs as a program when opened on a desktop; allowed: "
    )
    assert message.endswith("where the stage lists it exactly in UPLOAD_ALLOWED_TYPES")


def test_a_program_is_accepted_only_with_its_type_listed_exactly():
    settings = OPEN._replace(allowed_types=("application/x-msdownload",))
    program = parse(settings, filename="setup.exe", content_type="application/x-msdownload")
    assert program.filename == "setup.exe"
    assert refused(OPEN, filename="setup.exe", content_type="application/x-msdownload") == (
        "filename ends in .exe, which runs as a program when opened on a desktop; allowed: "
        "another name, or a content_type of application/x-msdownload, "
        "application/vnd.microsoft.portable-executable, application/x-dosexec where the "
        "stage lists it exactly in UPLOAD_ALLOWED_TYPES")  # fmt: skip


def test_known_types_only_refuses_a_type_without_a_signature_and_requires_one():
    settings = OPEN._replace(require_known_types=True)
    assert parse(settings, content_type="image/png").content_type == "image/png"
    assert refused(settings, content_type="text/plain") == (
        "content_type 'text/plain' has no signature the verifier knows, and "
        "UPLOAD_REQUIRE_KNOWN_TYPES is on; allowed: a type recognised by its bytes, like "
        "image/png or application/pdf")  # fmt: skip
    assert refused(settings) == "content_type is required; allowed: a type"
