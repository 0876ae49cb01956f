"""AWS Signature Version 4 verification: the server side, as pure functions.

The signing rules are AWS's own (SigV4 documentation, "Create a canonical request", "Create a string to
sign", "Calculate the signature"), applied the way botocore applies them to a non-S3 service. The shared wire
spec ``aws-wire-api.md`` §2 and §10.2-10.3 pins them for ``medical-imaging`` (all 21 recorded boto3 requests
verified against them):

* **Canonical URI**: the path exactly as received, percent-encoding preserved, with dot segments removed and
  runs of ``/`` merged (botocore ``normalize_url_path``/``remove_dot_segments``), then URI-encoded *once more*
  with only ``A-Za-z0-9-_.~`` and ``/`` left alone. A label that botocore sent as ``arn%3Aaws`` was signed as
  ``arn%253Aaws`` (the non-S3 "double encoding"); a path that arrived with raw characters (``/ሴ``,
  ``/example space/``) is encoded a single time. Either way the rule is "encode what was on the wire".
* **Canonical query**: each ``key=value`` pair percent-decoded, then re-encoded with only ``A-Za-z0-9-_.~``
  unescaped, sorted by key then value. ``+`` is a literal plus (``%2B``), never a space; a key without ``=``
  gets an empty value (``key=``).
* **Canonical headers**: the headers named in ``SignedHeaders``, lower-cased, in that order, each value
  trimmed with inner runs of whitespace collapsed to one space. ``host`` carries the port as received.
* **Payload hash**: hex SHA-256 of the body, or the value of ``x-amz-content-sha256`` when the client sent one
  (it must then equal the body's hash, or be ``UNSIGNED-PAYLOAD``, or ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
  over a plain body: the guide's STOW-RS examples (1830-1860) send that literal with ``curl --aws-sigv4`` and
  an unencoded body; an ``aws-chunked`` body with per-chunk signatures is refused).

Every failure raises :class:`openhi.errors.AuthenticationError` with the code and message the real service
uses; the API layer answers each with HTTP 403. The checks run in the order AWS applies them: shape of the
Authorization header (``IncompleteSignatureException``), credential scope and clock skew
(``InvalidSignatureException``), access key (``UnrecognizedClientException``), then the signature itself.

Documented choices of this server:

* **Any region** in the credential scope is accepted and reported in :class:`VerifiedIdentity`; one OpenHI
  deployment answers whatever region the client was configured with.
* **Session tokens**: the key lookup gives the secret and, for temporary credentials (STS ``AssumeRole``), the
  session token the request must carry in ``X-Amz-Security-Token`` (compared in constant time). A temporary key
  without its token or with another one, and a long-term key with a token, are refused as an unrecognized client,
  like an unknown key (AWS answers "The security token included in the request is invalid" for all of them).
* **Header authentication only** for now: a request signed in its query string (a presigned URL, recognised
  by ``X-Amz-Algorithm``) is refused with ``IncompleteSignatureException``. The building blocks below are the
  ones presigned-URL verification will reuse.
* The body's integrity is only covered when its hash is signed: with ``UNSIGNED-PAYLOAD`` (or the streaming
  literal over a plain body) the signature
  authenticates the request line and headers, not the body (use TLS).

``raw_path`` and ``raw_query`` are text; a front end that decoded non-UTF-8 wire bytes with
``errors="surrogateescape"`` gets them re-encoded byte-for-byte here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, unquote_to_bytes

from openhi.errors import AuthenticationError

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_PAYLOAD_SHA256: Final = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
DEFAULT_SERVICE: Final = "medical-imaging"
DEFAULT_MAX_SKEW: Final = timedelta(minutes=15)

MISSING_AUTHENTICATION_TOKEN: Final = "MissingAuthenticationTokenException"  # noqa: S105 (an error code)
INCOMPLETE_SIGNATURE: Final = "IncompleteSignatureException"
UNRECOGNIZED_CLIENT: Final = "UnrecognizedClientException"
INVALID_SIGNATURE: Final = "InvalidSignatureException"

MISSING_TOKEN_MESSAGE: Final = "Missing Authentication Token"  # noqa: S105 (a message)
INVALID_TOKEN_MESSAGE: Final = "The security token included in the request is invalid."  # noqa: S105
SIGNATURE_MISMATCH_MESSAGE: Final = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
CONTENT_SHA256_MISMATCH_MESSAGE: Final = "The provided 'x-amz-content-sha256' header does not match what was computed."

# Characters a URI component keeps unescaped (RFC 3986 unreserved); quote() adds the ASCII letters and digits.
_UNRESERVED: Final = "-_.~"
_AMZ_DATE_RE: Final = re.compile(r"\d{8}T\d{6}Z")
# RFC 5322 / IMF-fixdate, e.g. "Sat, 28 Nov 2026 10:30:00 GMT" (botocore writes "-0000").
_HTTP_DATE_RE: Final = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (GMT|UTC|UT|Z|[+-]\d{4})"
)
_HEX_SHA256_RE: Final = re.compile(r"[0-9A-Fa-f]{64}")
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of one HTTP request, as it arrived."""

    method: str
    raw_path: str  # path exactly as received on the wire, percent-encoding preserved, no query
    raw_query: str  # query string exactly as received ('' when none)
    headers: Mapping[str, str]  # header names lower-cased; repeated headers already joined with ','
    payload_sha256: str  # lowercase hex sha256 of the exact body bytes


@dataclass(frozen=True)
class KeyMaterial:
    """What the verifier needs of an access key: its secret and, for temporary credentials, the session token."""

    secret: str
    session_token: str | None = None


type KeyLookup = Callable[[str], KeyMaterial | str | None]
"""Access key id -> its material (a bare ``str`` is the secret of a long-term key), or None when unknown."""


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who signed the request, once the signature checked out."""

    access_key_id: str
    region: str  # region from the credential scope (any region is accepted; see the module docstring)
    request_time: datetime


# ------------------------------------------------------------------------------------------- building blocks


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal that also merges runs of ``/`` (botocore's variant)."""
    if not path:
        return ""
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def canonical_uri(raw_path: str) -> str:
    """The CanonicalURI line: normalize the wire path, then URI-encode it again (``%`` becomes ``%25``)."""
    normalized = remove_dot_segments(raw_path) or "/"
    return quote(normalized.encode("utf-8", "surrogateescape"), safe="/~")


def _uri_encode(component: bytes) -> str:
    return quote(component, safe=_UNRESERVED)


def _percent_decode(component: str) -> bytes:
    return unquote_to_bytes(component.encode("utf-8", "surrogateescape"))


def query_pairs(raw_query: str) -> list[tuple[bytes, bytes]]:
    """The query's ``key=value`` pairs, percent-decoded to bytes, in wire order (empty pieces skipped)."""
    pairs: list[tuple[bytes, bytes]] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((_percent_decode(key), _percent_decode(value)))
    return pairs


def canonical_query(raw_query: str) -> str:
    """The CanonicalQueryString line: decode each pair, re-encode it, sort by key then value."""
    encoded = sorted((_uri_encode(key), _uri_encode(value)) for key, value in query_pairs(raw_query))
    return "&".join(f"{key}={value}" for key, value in encoded)


def _trimall(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(headers: Mapping[str, str], signed: Sequence[str]) -> str:
    """The CanonicalHeaders block: ``name:value\\n`` for each signed header, in ``signed`` order.

    ``headers`` has lower-cased names. A signed header that is absent contributes an empty value (the
    signature then fails to match unless the client signed an empty value).
    """
    return "".join(f"{name}:{_trimall(headers.get(name, ''))}\n" for name in signed)


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The whole canonical request (six parts joined by newlines)."""
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def credential_scope(date: str, region: str, service: str) -> str:
    """``yyyymmdd/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The StringToSign: algorithm, timestamp, credential scope, hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return "\n".join((ALGORITHM, amz_date, scope, digest))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain over date, region, service and ``aws4_request``."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def signature(key: bytes, to_sign: str) -> str:
    """The lowercase hex HMAC-SHA256 of the string to sign under the derived key."""
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


def _fail(code: str, message: str) -> AuthenticationError:
    return AuthenticationError(code, message)


def _has_query_authentication(raw_query: str) -> bool:
    return any(key == b"X-Amz-Algorithm" for key, _ in query_pairs(raw_query))


def _parse_authorization(value: str, has_date: bool) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        # AWS echoes the header here; another scheme's credentials (a bearer token) are not echoed back.
        raise _fail(INCOMPLETE_SIGNATURE, f"Unsupported AWS 'algorithm': '{algorithm}'")
    params: dict[str, str] = {}
    for item in rest.split(","):
        name, separator, param = item.strip().partition("=")
        if separator and name not in params:
            params[name] = param.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not has_date:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise _fail(INCOMPLETE_SIGNATURE, f"{' '.join(problems)} Authorization={value}")

    credential = params["Credential"]
    parts = credential.split("/")
    if len(parts) != 5:
        raise _fail(
            INCOMPLETE_SIGNATURE,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'",
        )
    signed = tuple(name.strip().lower() for name in params["SignedHeaders"].split(";"))
    if "host" not in signed:
        raise _fail(INCOMPLETE_SIGNATURE, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    key_id, scope_date, region, service, terminator = parts
    return _Authorization(key_id, scope_date, region, service, terminator, signed, params["Signature"])


def _parse_request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """The request timestamp as ``(yyyymmddThhmmssZ, aware datetime)``: X-Amz-Date, else Date."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        text = amz_date.strip()
        if _AMZ_DATE_RE.fullmatch(text):
            try:
                moment = datetime.strptime(text, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                pass
            else:
                return text, moment
        raise _bad_date(amz_date)
    http_date = headers.get("date", "")
    match = _HTTP_DATE_RE.fullmatch(http_date.strip())
    if match:
        day, month_name, year, hour, minute, second, zone = match.groups()
        month = _MONTHS.get(month_name.lower())
        offset = timedelta()
        if zone[0] in "+-":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
            offset = -offset if zone[0] == "-" else offset
        if month is not None:
            try:
                local = datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
            except ValueError:
                pass
            else:
                moment = local - offset
                return moment.strftime(AMZ_DATE_FORMAT), moment
    raise _bad_date(http_date)


def _bad_date(value: str) -> AuthenticationError:
    return _fail(
        INCOMPLETE_SIGNATURE,
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601",
    )


def _skew_text(max_skew: timedelta) -> str:
    seconds = max_skew.total_seconds()
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min."
    return f"{seconds / 60:g} min."


def _check_skew(amz_date: str, request_time: datetime, now: datetime, max_skew: timedelta) -> None:
    earliest = now - max_skew
    latest = now + max_skew
    now_text = now.strftime(AMZ_DATE_FORMAT)
    if request_time < earliest:
        raise _fail(
            INVALID_SIGNATURE,
            f"Signature expired: {amz_date} is now earlier than {earliest.strftime(AMZ_DATE_FORMAT)} "
            f"({now_text} - {_skew_text(max_skew)})",
        )
    if request_time > latest:
        raise _fail(
            INVALID_SIGNATURE,
            f"Signature not yet current: {amz_date} is still later than {latest.strftime(AMZ_DATE_FORMAT)} "
            f"({now_text} + {_skew_text(max_skew)})",
        )


def _check_scope(auth: _Authorization, amz_date: str, service: str) -> None:
    problems: list[str] = []
    if not auth.region:
        problems.append(f"Credential should be scoped to a valid region, not '{auth.region}'")
    if auth.service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'")
    if auth.terminator != TERMINATOR:
        problems.append(f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{auth.terminator}'")
    if auth.scope_date != amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.scope_date}' != '{amz_date[:8]}', from '{amz_date}'"
        )
    if problems:
        raise _fail(INVALID_SIGNATURE, "".join(f"{problem}. " for problem in problems))


def _payload_hash(request: SignedRequest) -> str:
    declared = request.headers.get("x-amz-content-sha256")
    if declared is None:
        return request.payload_sha256
    declared = declared.strip()
    if declared == UNSIGNED_PAYLOAD:
        return declared
    if declared == STREAMING_PAYLOAD:
        encodings = request.headers.get("content-encoding", "").lower()
        if "aws-chunked" in encodings or "x-amz-decoded-content-length" in request.headers:
            raise _fail(
                INVALID_SIGNATURE,
                "aws-chunked bodies with chunk signatures are not supported: send the body unencoded, "
                f"signed with its SHA-256 or with '{UNSIGNED_PAYLOAD}'.",
            )
        return declared
    if _HEX_SHA256_RE.fullmatch(declared):
        if declared.lower() != request.payload_sha256.lower():
            raise _fail(INVALID_SIGNATURE, CONTENT_SHA256_MISMATCH_MESSAGE)
        return declared
    raise _fail(
        INVALID_SIGNATURE,
        f"Unsupported 'x-amz-content-sha256' value '{declared}': send the hex SHA-256 of the body "
        f"or '{UNSIGNED_PAYLOAD}'.",
    )


def _check_session_token(presented: str | None, expected: str | None) -> None:
    if expected is None and presented is None:
        return
    if (
        expected is None
        or presented is None
        or not hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
    ):
        raise _fail(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE)


def verify(
    request: SignedRequest,
    secret_for: KeyLookup,
    now: datetime,
    *,
    service: str = DEFAULT_SERVICE,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> VerifiedIdentity:
    """Check the request's SigV4 Authorization header; return who signed it or raise AuthenticationError.

    ``secret_for`` maps an access key id to its ``KeyMaterial`` (or to the bare secret of a long-term key; None
    when unknown); it may itself raise ``AuthenticationError`` (an expired session). ``now`` is the server's clock
    (a naive value is taken as UTC); the request time may differ from it by at most ``max_skew`` either way.
    """
    headers = request.headers
    authorization = headers.get("authorization")
    if authorization is None:
        if _has_query_authentication(request.raw_query):
            raise _fail(
                INCOMPLETE_SIGNATURE,
                "Query-string (presigned URL) authentication is not supported by this server; "
                "sign the request with an Authorization header.",
            )
        raise _fail(MISSING_AUTHENTICATION_TOKEN, MISSING_TOKEN_MESSAGE)

    has_date = "x-amz-date" in headers or "date" in headers
    auth = _parse_authorization(authorization, has_date)
    amz_date, request_time = _parse_request_time(headers)

    _check_scope(auth, amz_date, service)
    now_utc = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    _check_skew(amz_date, request_time, now_utc, max_skew)

    material = secret_for(auth.access_key_id)
    if material is None:
        raise _fail(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE)
    if isinstance(material, str):
        material = KeyMaterial(material)
    _check_session_token(headers.get("x-amz-security-token"), material.session_token)
    secret = material.secret

    payload_hash = _payload_hash(request)
    canonical = canonical_request(
        request.method, request.raw_path, request.raw_query, headers, auth.signed_headers, payload_hash
    )
    scope = credential_scope(auth.scope_date, auth.region, auth.service)
    expected = signature(
        signing_key(secret, auth.scope_date, auth.region, auth.service),
        string_to_sign(amz_date, scope, canonical),
    )
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("utf-8", "surrogateescape")):
        raise _fail(INVALID_SIGNATURE, SIGNATURE_MISMATCH_MESSAGE)
    return VerifiedIdentity(auth.access_key_id, auth.region, request_time)
