"""Bearer header parsing and the JWT time-claim pre-check of guide 2690-2740 (openhi.auth.bearer)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openhi.auth.bearer import CLOCK_LEEWAY_SECONDS, MAX_TOKEN_CHARS, bearer_token, precheck
from openhi.errors import AuthenticationError

NOW = datetime(2025, 9, 30, 12, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    head = header if header is not None else {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}.{b64(b'signature')}"


def refused(token: str, fragment: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        precheck(token, NOW)
    assert info.value.code == "InvalidTokenException"
    assert info.value.message.startswith("Invalid or expired token: ")
    assert fragment in info.value.message


# -- the header --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_token_extracted_case_insensitively(scheme: str) -> None:
    assert bearer_token(f"{scheme} abc.def.ghi") == "abc.def.ghi"
    assert bearer_token(f"  {scheme}   abc.def.ghi  ") == "abc.def.ghi"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "AWS4-HMAC-SHA256 Credential=AKIA/20250930/us-east-1/medical-imaging/aws4_request",
        "Basic dXNlcjpwdw==",
        "Bearerx y",
    ],
)
def test_other_schemes_are_not_bearer(header: str) -> None:
    assert bearer_token(header) is None


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer", "carries no token"),
        ("Bearer    ", "carries no token"),
        ("Bearer abc def", "b64token"),
        ('Bearer abc"def', "b64token"),
        ("Bearer " + "a" * (MAX_TOKEN_CHARS + 1), "longer than"),
    ],
)
def test_malformed_bearer_header(header: str, fragment: str) -> None:
    with pytest.raises(AuthenticationError, match=fragment) as info:
        bearer_token(header)
    assert info.value.code == "InvalidTokenException"


# -- the claims --------------------------------------------------------------------------------------------------


def test_valid_token_returns_its_claims() -> None:
    claims = {"sub": "alice", "iat": T - 60, "exp": T + 3600, "nbf": T - 60}
    assert dict(precheck(make_token(claims), NOW)) == claims


def test_fractional_numeric_dates_are_accepted() -> None:
    assert precheck(make_token({"iat": T - 0.5, "exp": T + 0.5}), NOW)["exp"] == T + 0.5


def test_expired() -> None:
    refused(make_token({"iat": T - 7200, "exp": T - 1}), "expired")


def test_expiring_exactly_now_is_expired() -> None:
    refused(make_token({"iat": T - 60, "exp": T}), "expired")


def test_nbf_in_the_future() -> None:
    refused(make_token({"iat": T - 60, "exp": T + 3600, "nbf": T + 600}), "'nbf'")


def test_nbf_within_leeway_is_accepted() -> None:
    precheck(make_token({"iat": T, "exp": T + 3600, "nbf": T + CLOCK_LEEWAY_SECONDS}), NOW)


def test_iat_in_the_future() -> None:
    refused(make_token({"iat": T + 600, "exp": T + 3600}), "issued in the future")


def test_iat_within_leeway_is_accepted() -> None:
    precheck(make_token({"iat": T + CLOCK_LEEWAY_SECONDS, "exp": T + 3600}), NOW)
    refused(make_token({"iat": T + CLOCK_LEEWAY_SECONDS + 1, "exp": T + 3600}), "issued in the future")


def test_iat_older_than_twelve_hours() -> None:
    twelve_hours = int(timedelta(hours=12).total_seconds())
    precheck(make_token({"iat": T - twelve_hours, "exp": T + 60}), NOW)
    refused(make_token({"iat": T - twelve_hours - 1, "exp": T + 60}), "more than 12 hours ago")


@pytest.mark.parametrize(("missing", "claims"), [("exp", {"iat": T - 60}), ("iat", {"exp": T + 60})])
def test_required_claims(missing: str, claims: dict[str, Any]) -> None:
    refused(make_token(claims), f"'{missing}' claim is required")


@pytest.mark.parametrize("bad", ["1700000000", True, None, [1], {"t": 1}])
def test_non_numeric_claims(bad: object) -> None:
    refused(make_token({"iat": T - 60, "exp": bad}), "not a NumericDate")
    refused(make_token({"iat": bad, "exp": T + 60}), "not a NumericDate")
    refused(make_token({"iat": T - 60, "exp": T + 60, "nbf": bad}), "not a NumericDate")


def test_non_finite_claim() -> None:
    payload = b64(b'{"iat": 1, "exp": Infinity}')
    refused(f"{b64(b'{}')}.{payload}.sig", "not a NumericDate")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "three dot-separated segments"),
        ("abc", "three dot-separated segments"),
        ("a.b", "three dot-separated segments"),
        ("a.b.c.d.e", "three dot-separated segments"),  # a JWE is not an access token here
        (".payload.sig", "header is not base64url"),
        ("e30..sig", "payload is not base64url"),
        ("e30.ab+c.sig", "payload is not base64url"),
        ("e30.a.sig", "payload is not base64url"),  # a length of 1 mod 4 cannot be base64
        ("e30." + b64(b"not json") + ".sig", "payload is not JSON"),
        ("e30." + b64(b"\xff\xfe") + ".sig", "payload is not JSON"),
        ("e30." + b64(b"[1, 2]") + ".sig", "payload is not a JSON object"),
        (b64(b"[]") + "." + b64(b"{}") + ".sig", "header is not a JSON object"),
        ("a" * (MAX_TOKEN_CHARS + 1), "longer than"),
    ],
)
def test_garbage_tokens(token: str, fragment: str) -> None:
    refused(token, fragment)


def test_signature_is_not_checked_here() -> None:
    claims = {"iat": T - 60, "exp": T + 60}
    header, payload, _ = make_token(claims).split(".")
    assert dict(precheck(f"{header}.{payload}.", NOW)) == claims
