from __future__ import annotations

import pytest

from chalicelib.core.errors import ConfigError
from chalicelib.core.settings import Settings, cors_allow_origin

MINIMAL = {"UPLOAD_BUCKET": "my-uploads", "AWS_REGION": "eu-west-1"}


def settings(**overrides: str | None) -> Settings:
    return Settings.from_env({k: v for k, v in {**MINIMAL, **overrides}.items() if v is not None})


def error(**overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({k: v for k, v in {**MINIMAL, **overrides}.items() if v is not None})
    return str(info.value)


def test_defaults_match_the_original_service():
    assert Settings.from_env(MINIMAL) == Settings(
        bucket="my-uploads",
        region="eu-west-1",
        prefix="put_folder/",
        url_expires=300,
        endpoint_url=None,
        allowed_types=(),
        max_bytes=None,
        require_checksum=False,
        no_overwrite=False,
    )


def test_every_variable_is_read():
    assert Settings.from_env(
        {
            "UPLOAD_BUCKET": "b.with.dots",
            "AWS_REGION": "eu-west-1",
            "UPLOAD_BUCKET_REGION": "ap-southeast-2",
            "UPLOAD_PREFIX": "in/coming/",
            "UPLOAD_URL_EXPIRES": " 604800 ",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566/",
        }
    ) == Settings(
        bucket="b.with.dots",
        region="ap-southeast-2",
        prefix="in/coming/",
        url_expires=604800,
        endpoint_url="http://127.0.0.1:4566",
    )


def test_missing_bucket_names_the_variable():
    assert error(UPLOAD_BUCKET="") == (
        "UPLOAD_BUCKET is required; set it to the name of the upload bucket"
    )


@pytest.mark.parametrize(
    "name", ["ab", "Upper", "-lead", "trail-", "a..b", "192.168.1.1", "a_b", "abc\n"]
)
def test_invalid_bucket_name_says_what_is_allowed(name):
    assert error(UPLOAD_BUCKET=name) == (
        f"UPLOAD_BUCKET={name!r} is not a valid S3 bucket name; allowed: 3 to 63 lower-case "
        "letters, digits, dots and hyphens, starting and ending with a letter or digit"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "UPLOAD_URL_EXPIRES=0 is out of range; allowed: 1 to 604800"),
        ("604801", "UPLOAD_URL_EXPIRES=604801 is out of range; allowed: 1 to 604800"),
        ("-5", "UPLOAD_URL_EXPIRES=-5 is out of range; allowed: 1 to 604800"),
        ("5m", "UPLOAD_URL_EXPIRES='5m' is not a whole number; allowed: 1 to 604800"),
        ("1.5", "UPLOAD_URL_EXPIRES='1.5' is not a whole number; allowed: 1 to 604800"),
    ],
)
def test_expiry_outside_one_second_to_seven_days_is_refused(raw, message):
    assert error(UPLOAD_URL_EXPIRES=raw) == message


@pytest.mark.parametrize("expires", ["1", "604800"])
def test_expiry_bounds_are_inclusive(expires):
    assert settings(UPLOAD_URL_EXPIRES=expires).url_expires == int(expires)


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "no-slash",
        "/abs/",
        "a//",
        "../up/",
        "a/../",
        "./",
        "sp ace/",
        "ü/",
        "a\n/",
        "a/\n",
        "*/",
        "a*/",
    ],
)
def test_prefix_must_be_safe_folders_ending_in_slash(prefix):
    assert error(UPLOAD_PREFIX=prefix).startswith(f"UPLOAD_PREFIX={prefix!r} is invalid; allowed:")


def test_region_falls_back_to_aws_default_region():
    env = {"UPLOAD_BUCKET": "my-uploads", "AWS_DEFAULT_REGION": "us-west-2"}
    assert Settings.from_env(env).region == "us-west-2"


def test_aws_region_wins_over_aws_default_region():
    env = {**MINIMAL, "AWS_DEFAULT_REGION": "us-west-2"}
    assert Settings.from_env(env).region == "eu-west-1"


def test_missing_region_says_which_variables_to_set():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"UPLOAD_BUCKET": "my-uploads"})
    assert str(info.value) == (
        "AWS_REGION is not set; set AWS_REGION or AWS_DEFAULT_REGION to the bucket's "
        "region, like 'eu-west-1'"
    )


def test_malformed_bucket_region_is_refused():
    assert error(UPLOAD_BUCKET_REGION="Europe") == (
        "UPLOAD_BUCKET_REGION='Europe' is not an AWS region; allowed: names like 'eu-west-1'"
    )


@pytest.mark.parametrize("url", ["127.0.0.1:4566", "ftp://host", "http://", "http://h/path"])
def test_endpoint_url_must_be_a_bare_http_origin(url):
    assert error(AWS_ENDPOINT_URL_S3=url) == (
        f"AWS_ENDPOINT_URL_S3={url!r} is invalid; allowed: an http(s) URL with a host and "
        "optional port and no path, like 'http://127.0.0.1:4566'"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "*"),
        ("*", "*"),
        ("https://app.example.com", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
    ],
)
def test_cors_origin_accepts_star_or_one_origin(value, expected):
    env = {} if value is None else {"CORS_ALLOW_ORIGIN": value}
    assert cors_allow_origin(env) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "app.example.com",
        "https://app.example.com/",
        "https://a.com, https://b.com",
        "*\n",
        "https://a.com\n",
    ],
)
def test_cors_origin_refuses_anything_else(value):
    with pytest.raises(ConfigError) as info:
        cors_allow_origin({"CORS_ALLOW_ORIGIN": value})
    assert str(info.value) == (
        f"CORS_ALLOW_ORIGIN={value!r} is invalid; allowed: '*' or one origin like "
        "'https://app.example.com' (scheme, host and optional port, no path)"
    )


def test_upload_rules_are_read_and_normalised():
    s = settings(
        UPLOAD_ALLOWED_TYPES=" Image/* , application/pdf,,",
        UPLOAD_MAX_BYTES="10485760",
        UPLOAD_REQUIRE_CHECKSUM="TRUE",
        UPLOAD_NO_OVERWRITE="on",
    )
    assert (s.allowed_types, s.max_bytes, s.require_checksum, s.no_overwrite) == (
        ("image/*", "application/pdf"),
        10485760,
        True,
        True,
    )


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_flags_can_be_turned_off(value):
    assert settings(UPLOAD_NO_OVERWRITE=value).no_overwrite is False


def test_unknown_flag_value_is_refused():
    assert error(UPLOAD_REQUIRE_CHECKSUM="maybe") == (
        "UPLOAD_REQUIRE_CHECKSUM='maybe' is not a boolean; allowed: true/false, 1/0, yes/no, on/off"
    )


@pytest.mark.parametrize(
    ("old", "new", "required"),
    [("true", None, True), ("false", None, False), ("yes", "on", True), ("0", "false", False)],
)
def test_the_old_name_upload_require_md5_still_sets_the_checksum_rule(old, new, required):
    assert (
        settings(UPLOAD_REQUIRE_MD5=old, UPLOAD_REQUIRE_CHECKSUM=new).require_checksum is required
    )


def test_the_old_and_new_checksum_rule_names_must_agree():
    assert error(UPLOAD_REQUIRE_MD5="true", UPLOAD_REQUIRE_CHECKSUM="false") == (
        "UPLOAD_REQUIRE_CHECKSUM and UPLOAD_REQUIRE_MD5 disagree; allowed: "
        "UPLOAD_REQUIRE_CHECKSUM alone (UPLOAD_REQUIRE_MD5 is its old name)"
    )


def test_bad_type_patterns_are_listed():
    assert error(UPLOAD_ALLOWED_TYPES="image/*, html, */png") == (
        "UPLOAD_ALLOWED_TYPES has invalid entries ['html', '*/png']; allowed: a "
        "comma-separated list of media types or subtype wildcards, like 'image/*, application/pdf'"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "UPLOAD_MAX_BYTES=0 is out of range; allowed: 1 to 5497558138880"),
        ("5497558138881",
         "UPLOAD_MAX_BYTES=5497558138881 is out of range; allowed: 1 to 5497558138880"),
        ("10MB", "UPLOAD_MAX_BYTES='10MB' is not a whole number; allowed: 1 to 5497558138880"),
    ],
)  # fmt: skip
def test_max_bytes_must_fit_s3s_largest_object(raw, message):
    assert error(UPLOAD_MAX_BYTES=raw) == message


@pytest.mark.parametrize(
    ("raw", "single", "any_route"),
    [(None, 5 * 1024**3, 5 * 1024**4), ("1000", 1000, 1000),
     (str(6 * 1024**3), 5 * 1024**3, 6 * 1024**3)],
)  # fmt: skip
def test_single_uploads_stop_at_5_gib_and_multipart_at_the_limit(raw, single, any_route):
    loaded = settings() if raw is None else settings(UPLOAD_MAX_BYTES=raw)
    assert (loaded.size_limit, loaded.object_size_limit) == (single, any_route)


def test_the_malware_scan_is_off_by_default_and_needs_verification():
    assert (settings().malware_scan, settings().unscanned) == (False, "reject")
    assert error(UPLOAD_MALWARE_SCAN="true") == (
        "UPLOAD_MALWARE_SCAN needs UPLOAD_VERIFY=true: the scan's result is part of the "
        "verifier's verdict; allowed: set both, or neither"
    )
    on = settings(UPLOAD_MALWARE_SCAN="true", UPLOAD_VERIFY="true", UPLOAD_UNSCANNED="Allow")
    assert (on.malware_scan, on.unscanned) == (True, "allow")


def test_an_unknown_unscanned_choice_is_refused():
    assert error(UPLOAD_UNSCANNED="ignore") == (
        "UPLOAD_UNSCANNED='ignore' is invalid; allowed: reject, allow"
    )
