"""The JWKS example authorizers against a real JWKS served on loopback, with real RSA / EC keys and PyJWT tokens.

Covers openhi.authorizers.examples.jwks (signature, issuer, audience, exp/iat, key cache and rotation) and
claims_to_roles, and the whole path setting -> registry -> OidcAuthenticator -> Caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from openhi.access.oidc import OidcAuthenticator
from openhi.authorizers.examples import claims_to_roles, jwks
from openhi.authorizers.examples.jwks import JwksAuthorizer, JwksCache, JwksUnavailableError, JwtVerifier
from openhi.authorizers.registry import AuthorizerRegistry
from openhi.clock import utc_now
from openhi.errors import AccessDeniedError, AuthenticationError, AuthorizerError, NotFoundError
from openhi.iam.principals import Caller, CallerKind

ISSUER = "https://idp.example.org/realms/hospital"
AUDIENCE = "openhi-dicomweb"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/DicomWebRead"
FULL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/DicomWebFull"
DEPT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/DepartmentA"
AUTHORIZER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:jwks"
MAPPED_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:claims"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


@dataclass
class JwksState:
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    requests: int = 0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def idp() -> Iterator[tuple[str, JwksState]]:
    """A JWKS endpoint on loopback whose key list and status the test controls."""
    state = JwksState(
        keys=[rsa_jwk(RSA_KEY, "rsa-1"), ec_jwk(EC_KEY, "ec-1"), {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # stdlib signature
            return

        def do_GET(self) -> None:
            state.requests += 1
            body = json.dumps({"keys": state.keys}).encode() if state.status == 200 else b"{}"
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", state
    server.shutdown()
    server.server_close()


def sign(key: Any, kid: str, algorithm: str = "RS256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now - 5, "exp": now + 600} | overrides
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def hmac_with_public_key() -> str:
    """The classic algorithm confusion: HS256 keyed with the RSA public key (PyJWT refuses to make one)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    secret = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def event(token: str) -> dict[str, str]:
    return {"datastoreId": "0123456789abcdef0123456789abcdef", "operation": "GetDICOMInstance", "bearerToken": token}


def authorizer(url: str, refresh_interval: float = 0.0) -> JwksAuthorizer:
    cache = JwksCache(url, refresh_interval_seconds=refresh_interval, timeout_seconds=2.0)
    return JwksAuthorizer(JwtVerifier(cache, ISSUER, [AUDIENCE]), lambda _claims: ROLE)


VALID = {"isTokenValid": True, "roleArn": ROLE}
DENIED = {"isTokenValid": False, "roleArn": ""}


def test_valid_rs256_and_es256(idp: tuple[str, JwksState]) -> None:
    url, state = idp
    authz = authorizer(url)
    assert authz(event(sign(RSA_KEY, "rsa-1"))) == VALID
    assert authz(event(sign(EC_KEY, "ec-1", "ES256"))) == VALID
    assert authz(event(sign(RSA_KEY, "rsa-1", sub="bob"))) == VALID
    assert state.requests == 1  # the key set is fetched once and cached


def test_audience_may_be_one_of_several(idp: tuple[str, JwksState]) -> None:
    url, _ = idp
    verifier = JwtVerifier(JwksCache(url), ISSUER, ["other-app", AUDIENCE])
    assert verifier.verify(sign(RSA_KEY, "rsa-1", aud=["x", AUDIENCE]))["sub"] == "alice"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", iss="https://evil.example.org"), id="wrong-issuer"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", aud="another-app"), id="wrong-audience"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", aud=None), id="no-audience"),
        pytest.param(lambda: sign(OTHER_RSA_KEY, "rsa-1"), id="bad-signature"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", iat=None), id="no-iat"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", nbf=int(time.time()) + 600), id="not-yet-valid"),
        pytest.param(lambda: sign(EC_KEY, "rsa-1", "ES256"), id="alg-does-not-match-key"),
        pytest.param(lambda: sign(RSA_KEY, "rsa-1", "PS256"), id="algorithm-not-accepted"),
        pytest.param(lambda: sign(b"a-shared-secret-of-at-least-32-bytes", "hmac", "HS256"), id="hmac"),
        pytest.param(hmac_with_public_key, id="rsa-public-key-as-hmac-secret"),
        pytest.param(lambda: sign("", "rsa-1", "none"), id="alg-none"),
        pytest.param(lambda: "garbage", id="garbage"),
    ],
)
def test_invalid_tokens_are_refused(idp: tuple[str, JwksState], make_token: Callable[[], str]) -> None:
    url, _ = idp
    assert authorizer(url)(event(make_token())) == DENIED


def test_missing_token_is_refused(idp: tuple[str, JwksState]) -> None:
    url, _ = idp
    assert authorizer(url)({"datastoreId": "x", "operation": "y"}) == DENIED


def test_unknown_kid_then_key_rotated_in(idp: tuple[str, JwksState]) -> None:
    url, state = idp
    authz = authorizer(url)
    rotated = sign(ROTATED_KEY, "rsa-2")
    assert authz(event(sign(RSA_KEY, "rsa-1"))) == VALID
    assert state.requests == 1
    assert authz(event(rotated)) == DENIED  # unknown kid: refetched once, still unknown
    assert state.requests == 2
    state.keys = [rsa_jwk(ROTATED_KEY, "rsa-2")]  # the IdP rotates its key
    assert authz(event(rotated)) == VALID
    assert state.requests == 3


def test_unknown_kid_refetch_is_rate_limited(idp: tuple[str, JwksState]) -> None:
    url, state = idp
    authz = authorizer(url, refresh_interval=30.0)
    assert authz(event(sign(RSA_KEY, "rsa-1"))) == VALID
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert authz(event(sign(ROTATED_KEY, kid))) == DENIED
    assert state.requests == 1


def test_keys_expire_after_the_ttl(idp: tuple[str, JwksState]) -> None:
    url, state = idp
    now = [1000.0]
    cache = JwksCache(url, ttl_seconds=3600, monotonic=lambda: now[0])
    assert cache.key("rsa-1") is not None
    now[0] += 3599
    assert cache.key("rsa-1") is not None
    assert state.requests == 1
    now[0] += 2
    state.keys = [ec_jwk(EC_KEY, "ec-1")]
    assert cache.key("rsa-1") is None  # refetched: the RSA key is gone
    assert state.requests == 2


def test_idp_outage_keeps_known_keys_or_fails(idp: tuple[str, JwksState]) -> None:
    url, state = idp
    now = [0.0]
    cache = JwksCache(url, ttl_seconds=10, monotonic=lambda: now[0])
    assert cache.key("rsa-1") is not None
    state.status = 500
    now[0] = 20.0
    assert cache.key("rsa-1") is not None  # stale keys are better than none
    state.status = 500
    with pytest.raises(JwksUnavailableError):
        JwksCache(url).key("rsa-1")


def test_verified_tokens_are_cached(idp: tuple[str, JwksState]) -> None:
    url, _ = idp
    calls: list[str] = []
    verifier = JwtVerifier(JwksCache(url), ISSUER, [AUDIENCE])

    class Counting(JwtVerifier):
        def verify(self, token: str) -> dict[str, Any]:
            calls.append(token)
            return verifier.verify(token)

    now = [time.time()]
    authz = JwksAuthorizer(
        Counting(JwksCache(url), ISSUER, [AUDIENCE]), lambda _c: ROLE, cache_seconds=60, wall_clock=lambda: now[0]
    )
    token = sign(RSA_KEY, "rsa-1")
    assert authz(event(token)) == VALID
    assert authz(event(token)) == VALID
    assert len(calls) == 1
    now[0] += 61
    assert authz(event(token)) == VALID
    assert len(calls) == 2


# -- through the service -----------------------------------------------------------------------------------------


def role_caller(role_arn: str) -> Caller:
    if role_arn in (ROLE, FULL_ROLE, DEPT_ROLE):
        return Caller(
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/x/oidc",
            account_id=ACCOUNT,
            kind=CallerKind.ASSUMED_ROLE,
            role_arn=role_arn,
        )
    raise NotFoundError(role_arn)


@pytest.fixture
def service(idp: tuple[str, JwksState], monkeypatch: pytest.MonkeyPatch) -> Iterator[OidcAuthenticator]:
    url, _ = idp
    monkeypatch.setenv("OPENHI_JWKS_URL", url)
    monkeypatch.setenv("OPENHI_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("OPENHI_JWT_AUDIENCE", f"someone-else,{AUDIENCE}")
    monkeypatch.setenv("OPENHI_JWT_ROLE_ARN", ROLE)
    rules = [
        {"claim": "groups", "value": "admin", "roleArn": FULL_ROLE},
        {"claim": "scope", "value": "dicom.read", "roleArn": ROLE},
        {"claim": ["realm_access", "roles"], "value": "department_A", "roleArn": DEPT_ROLE},
    ]
    monkeypatch.setenv("OPENHI_CLAIMS_ROLE_MAP", json.dumps(rules))
    jwks.handler.reset()
    claims_to_roles.handler.reset()
    registry = AuthorizerRegistry.from_setting(
        json.dumps(
            {
                AUTHORIZER_ARN: "python:openhi.authorizers.examples.jwks:handler",
                MAPPED_ARN: "python:openhi.authorizers.examples.claims_to_roles:handler",
            }
        )
    )
    authenticator = OidcAuthenticator(registry, role_caller, utc_now, account_id=ACCOUNT, region="us-east-1")
    yield authenticator
    authenticator.close()
    jwks.handler.reset()
    claims_to_roles.handler.reset()


def test_end_to_end_single_role(service: OidcAuthenticator) -> None:
    caller = service.authenticate(AUTHORIZER_ARN, "d" * 32, "SearchDICOMStudies", sign(EC_KEY, "ec-1", "ES256"))
    assert caller.role_arn == ROLE
    with pytest.raises(AuthenticationError, match="the authorizer rejected it"):
        service.authenticate(AUTHORIZER_ARN, "d" * 32, "SearchDICOMStudies", sign(OTHER_RSA_KEY, "rsa-1"))


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"groups": ["staff", "admin"], "scope": "dicom.read"}, FULL_ROLE),
        ({"groups": ["staff"], "scope": "openid dicom.read profile"}, ROLE),
        ({"realm_access": {"roles": ["department_A"]}}, DEPT_ROLE),
    ],
)
def test_end_to_end_claims_to_roles(service: OidcAuthenticator, claims: dict[str, Any], role: str) -> None:
    token = sign(RSA_KEY, "rsa-1", **claims)
    assert service.authenticate(MAPPED_ARN, "d" * 32, "GetDICOMInstance", token).role_arn == role


def test_end_to_end_no_matching_claim_is_access_denied(service: OidcAuthenticator) -> None:
    token = sign(RSA_KEY, "rsa-1", groups=["visitor"], scope="openid dicom.readonly")
    with pytest.raises(AccessDeniedError, match="empty role"):
        service.authenticate(MAPPED_ARN, "d" * 32, "GetDICOMInstance", token)


def test_end_to_end_missing_configuration(service: OidcAuthenticator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENHI_JWT_ROLE_ARN")
    jwks.handler.reset()
    with pytest.raises(AuthorizerError) as info:
        service.authenticate(AUTHORIZER_ARN, "d" * 32, "GetDICOMInstance", sign(RSA_KEY, "rsa-1"))
    assert info.value.code == "AuthorizerMisconfigurationException"
    assert "OPENHI_JWT_ROLE_ARN is not set" in info.value.message


def test_end_to_end_idp_down_is_an_authorizer_failure(service: OidcAuthenticator, idp: tuple[str, JwksState]) -> None:
    _, state = idp
    state.status = 503
    with pytest.raises(AuthorizerError) as info:
        service.authenticate(AUTHORIZER_ARN, "d" * 32, "GetDICOMInstance", sign(RSA_KEY, "rsa-1"))
    assert info.value.code == "AuthorizerFailureException"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '[{"claim": "groups", "value": "admin"}]',
        '[{"claim": [], "value": "admin", "roleArn": "arn:aws:iam::123456789012:role/x"}]',
        '[{"claim": "groups", "value": "", "roleArn": "arn:aws:iam::123456789012:role/x"}]',
        '[{"claim": "groups", "value": "admin", "roleArn": "arn:aws:iam::123456789012:user/x"}]',
    ],
)
def test_bad_role_maps_are_misconfigurations(text: str) -> None:
    with pytest.raises(AuthorizerError) as info:
        claims_to_roles.parse_rules(text)
    assert info.value.code == "AuthorizerMisconfigurationException"
