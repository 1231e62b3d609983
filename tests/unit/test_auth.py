"""Authorization settings, the caller's principal, and the key space it maps to."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.auth import AuthConfig, key_space, principal, principal_segment, quota_owner
from chalicelib.core.errors import ConfigError, Unauthenticated

POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123"
COGNITO = AuthConfig("cognito", (POOL,))
IAM = AuthConfig("iam")
NONE = AuthConfig("none")
SUB = "7d1c9a4e-5b2f-4c8e-9a1d-3e6f0b2c4d5a"


def test_auth_mode_is_required_so_no_stage_is_open_by_accident():
    with pytest.raises(ConfigError) as exc:
        AuthConfig.from_env({})
    assert str(exc.value) == (
        "AUTH_MODE='' is invalid; allowed: none, cognito, iam "
        "(set it in every stage of .chalice/config.json)"
    )


@pytest.mark.parametrize("mode", ["None", "cognito ", "jwt", "off"])
def test_unknown_auth_mode_is_refused(mode):
    with pytest.raises(ConfigError, match=r"^AUTH_MODE=.* is invalid; allowed: none, cognito"):
        AuthConfig.from_env({"AUTH_MODE": mode})


def test_iam_and_none_need_no_pool():
    assert AuthConfig.from_env({"AUTH_MODE": "iam"}) == IAM
    assert AuthConfig.from_env({"AUTH_MODE": "none", "COGNITO_USER_POOL_ARNS": POOL}) == NONE


def test_cognito_reads_one_or_more_pool_arns():
    second = "arn:aws:cognito-idp:us-east-1:210987654321:userpool/us-east-1_Xy9"
    env = {"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": f" {POOL} ,{second}"}
    assert AuthConfig.from_env(env) == AuthConfig("cognito", (POOL, second))


@pytest.mark.parametrize(
    "arns",
    ["", " , ", "arn:aws:cognito-idp:eu-west-1:123:userpool/eu-west-1_AbC",
     f"{POOL},arn:aws:iam::123456789012:role/x", "eu-west-1_AbC123"],
)  # fmt: skip
def test_cognito_without_valid_pool_arns_is_refused(arns):
    with pytest.raises(ConfigError) as exc:
        AuthConfig.from_env({"AUTH_MODE": "cognito", "COGNITO_USER_POOL_ARNS": arns})
    assert str(exc.value) == (
        f"COGNITO_USER_POOL_ARNS={arns!r} is invalid; allowed: a comma-separated list of "
        "user pool ARNs, like "
        "'arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123'"
    )


def test_cognito_principal_is_the_sub_claim_not_the_username():
    context = {"authorizer": {"claims": {"sub": SUB, "cognito:username": "alice"}}}
    assert principal(COGNITO, context) == SUB


def test_iam_principal_is_the_sigv4_caller():
    context = {"identity": {"caller": "AROAEXAMPLE:alice", "cognitoIdentityId": None}}
    assert principal(IAM, context) == "AROAEXAMPLE:alice"


def test_iam_principal_prefers_the_cognito_identity_over_the_shared_role():
    # Identity pool users all hold the pool's role: the caller alone would lump them.
    identity = {
        "caller": "AROAPOOLROLE:CognitoIdentityCredentials",
        "cognitoIdentityId": "eu-west-1:0c6f1a2b-3d4e-4f5a-8b6c-7d8e9f0a1b2c",
    }
    assert principal(IAM, {"identity": identity}) == identity["cognitoIdentityId"]


@pytest.mark.parametrize(
    ("config", "context"),
    [
        (COGNITO, {}),
        (COGNITO, {"authorizer": None}),
        (COGNITO, {"authorizer": {"principalId": "alice"}}),
        (COGNITO, {"authorizer": {"claims": {"sub": ""}}}),
        (COGNITO, {"authorizer": {"claims": {"sub": ["x"]}}}),
        (IAM, {"identity": {"sourceIp": "127.0.0.1"}}),
        (IAM, {"identity": {"caller": None, "cognitoIdentityId": None}}),
        (NONE, {"authorizer": {"claims": {"sub": SUB}}}),
    ],
)
def test_missing_or_malformed_identity_is_no_principal(config, context):
    assert principal(config, context) is None


@pytest.mark.parametrize(
    ("caller", "segment"),
    [
        (SUB, SUB),
        ("AIDAJQABLZS4A3QDU576Q", "AIDAJQABLZS4A3QDU576Q"),
        ("AROAEXAMPLE:alice@example.com", "AROAEXAMPLE_3Aalice_40example_2Ecom"),
        ("AROAEXAMPLE:../../etc", "AROAEXAMPLE_3A_2E_2E_2F_2E_2E_2Fetc"),
        ("..", "_2E_2E"),
        ("a_b", "a_5Fb"),
        ("a b/c\\d", "a_20b_2Fc_5Cd"),
        ("eu-west-1:0c6f", "eu-west-1_3A0c6f"),
        ("ünï", "_C3_BCn_C3_AF"),
    ],
)
def test_odd_iam_caller_ids_become_one_safe_key_segment(caller, segment):
    assert principal_segment(caller) == segment


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_principals_never_share_a_segment(a, b):
    assert (principal_segment(a) == principal_segment(b)) == (a == b)


@given(st.text(min_size=1))
def test_every_segment_is_safe_characters_only(value):
    assert re.fullmatch(r"[A-Za-z0-9_-]+", principal_segment(value))


def test_without_auth_the_space_is_the_shared_prefix():
    assert key_space("put_folder/", NONE, {}) == "put_folder/"


def test_with_auth_the_space_is_the_principals_folder():
    context = {"identity": {"caller": "AROAEXAMPLE:alice@example.com"}}
    assert key_space("put_folder/", IAM, context) == (
        "put_folder/AROAEXAMPLE_3Aalice_40example_2Ecom/"
    )


@pytest.mark.parametrize(
    ("config", "how"),
    [
        (COGNITO, "send a Cognito user pool token in the Authorization header"),
        (IAM, "sign the request with AWS Signature Version 4 (IAM credentials)"),
    ],
)
def test_with_auth_and_no_principal_there_is_no_fallback_to_the_shared_prefix(config, how):
    with pytest.raises(Unauthenticated) as exc:
        key_space("put_folder/", config, {"identity": {}, "authorizer": {}})
    assert str(exc.value) == f"no authenticated caller (AUTH_MODE={config.mode}); {how}"


def test_a_principal_too_long_for_a_key_is_refused():
    context = {"identity": {"caller": "AROAEXAMPLE:" + "@" * 82}}  # 11 + 83 * 3 = 260 chars
    with pytest.raises(Unauthenticated):
        key_space("put_folder/", IAM, context)


@pytest.mark.parametrize(
    ("source", "owner"),
    [
        ("203.0.113.7", "ip-203.0.113.7"),
        # Each IPv6 subscriber gets a /64: all its addresses are one quota.
        ("2001:db8:1:2::1", "ip-2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "ip-2001:db8:1:2::/64"),
        ("2001:DB8:1:3::1", "ip-2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "ip-203.0.113.7"),  # the same IPv4 caller
        ("999.1.1.1", "ip-unknown"),
        ("1.2.3.4\n", "ip-unknown"),
        (":::", "ip-unknown"),
        ("1" * 46, "ip-unknown"),
        (None, "ip-unknown"),
        (7, "ip-unknown"),
    ],
)
def test_an_open_stages_quota_counts_per_ipv4_address_and_per_ipv6_subscriber(source, owner):
    assert quota_owner(NONE, {"identity": {"sourceIp": source}}) == owner


def test_an_authorised_stages_quota_counts_per_principal_whatever_its_address():
    context = {"authorizer": {"claims": {"sub": SUB}}, "identity": {"sourceIp": "2001:db8::1"}}
    assert quota_owner(COGNITO, context) == SUB
