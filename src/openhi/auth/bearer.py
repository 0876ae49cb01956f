"""OIDC bearer tokens, pure: take the token out of ``Authorization`` and pre-check its time claims.

Guide 2665-2740 ("OIDC 身份验证适用于 DICOMweb APIs"): a DICOMweb request may carry ``Authorization: Bearer
<token>`` (RFC 6750 §2.1) instead of a SigV4 signature. The token must be a JWT (RFC 7519). Before the data
store's authorizer is called, HealthImaging rejects obviously invalid or expired tokens by their standard time
claims (guide 2690-2740):

* ``exp`` is required and must be later than now (UTC);
* ``iat`` is required, must not be later than now and not older than 12 hours (a 12-hour maximum lifetime);
* ``nbf`` is optional; when present, it must not be later than now.

The signature is **not** verified here: that is the authorizer's job (guide 2700-2710). The token is only split
and its payload decoded (base64url, RFC 7515 §2 / §7.1, compact serialization of three segments) to read the
claims, which must be JSON numbers (NumericDate, RFC 7519 §2).

Every failure raises :class:`openhi.errors.AuthenticationError` with code ``InvalidTokenException`` and a
message starting ``Invalid or expired token:`` (guide 3000-3030: 403 "token invalid or expired").

Documented choice: :data:`CLOCK_LEEWAY_SECONDS` (5 s) of tolerance is granted to the "not in the future" checks
of ``iat`` and ``nbf`` only, so a token minted by an IdP whose clock is a little ahead is not refused in its
first seconds. ``exp`` and the 12-hour age get no leeway: an expired token is expired.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from openhi.errors import AuthenticationError

__all__ = [
    "CLOCK_LEEWAY_SECONDS",
    "INVALID_TOKEN",
    "MAX_TOKEN_AGE",
    "MAX_TOKEN_CHARS",
    "bearer_token",
    "precheck",
]

INVALID_TOKEN = "InvalidTokenException"  # noqa: S105 (an error code, not a secret)
CLOCK_LEEWAY_SECONDS = 5
MAX_TOKEN_AGE = timedelta(hours=12)
MAX_TOKEN_CHARS = 16 * 1024  # far above any IdP's access token; bounds the work done on garbage

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr](?: +(.*))?")  # auth-scheme is case-insensitive (RFC 7235 §2.1)
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1 b64token
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")  # base64url without padding (RFC 7515 §2)


def _invalid(why: str) -> AuthenticationError:
    return AuthenticationError(INVALID_TOKEN, f"Invalid or expired token: {why}")


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization`` header value using the Bearer scheme, else None.

    None means "not a bearer header" (absent, or another scheme such as ``AWS4-HMAC-SHA256``), so the caller
    can try its other authentication. A Bearer header whose token is missing or not an RFC 6750 ``b64token``
    raises ``InvalidTokenException``: the client chose bearer authentication and got it wrong.
    """
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        return None
    token = (match.group(1) or "").strip()
    if not token:
        raise _invalid("the Bearer authorization header carries no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise _invalid(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    if _TOKEN68.fullmatch(token) is None:
        raise _invalid("the bearer token contains characters outside the b64token alphabet")
    return token


def _decode_segment(segment: str, name: str) -> dict[str, Any]:
    if not segment or _SEGMENT.fullmatch(segment) is None:
        raise _invalid(f"the JWT {name} is not base64url")
    try:
        raw = base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"the JWT {name} is not base64url") from exc
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(f"the JWT {name} is not JSON") from exc
    if not isinstance(value, dict):
        raise _invalid(f"the JWT {name} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"the {name!r} claim is not a NumericDate")
    return float(value)


def _decode_claims(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS:
        raise _invalid(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    segments = token.split(".")
    if len(segments) != 3:
        raise _invalid("the token is not a JWT (three dot-separated segments)")
    _decode_segment(segments[0], "header")
    return _decode_segment(segments[1], "payload")


def precheck(token: str, now: datetime) -> Mapping[str, Any]:
    """Decode the JWT's claims without verifying its signature and apply the guide's time checks.

    ``now`` must be an aware datetime. Returns the claims; raises ``AuthenticationError`` (InvalidTokenException).
    """
    claims = _decode_claims(token)
    instant = now.timestamp()
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    if exp is None:
        raise _invalid("the 'exp' claim is required")
    if iat is None:
        raise _invalid("the 'iat' claim is required")
    if exp <= instant:
        raise _invalid("the token has expired")
    if iat > instant + CLOCK_LEEWAY_SECONDS:
        raise _invalid("the token was issued in the future ('iat')")
    if iat < instant - MAX_TOKEN_AGE.total_seconds():
        raise _invalid("the token was issued more than 12 hours ago ('iat')")
    if nbf is not None and nbf > instant + CLOCK_LEEWAY_SECONDS:
        raise _invalid("the token is not valid yet ('nbf')")
    return claims
