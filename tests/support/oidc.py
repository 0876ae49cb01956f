"""OIDC test doubles: an identity provider (key pairs, JWKS, token minting) and loopback HTTP authorizers.

For the OIDC flow of guide 2665-3216 ("OIDC 身份验证适用于 DICOMweb APIs"):

* :class:`IdentityProvider` holds an RSA (RS256, RFC 7518 §3.3) and an EC P-256 (ES256, §3.4) signing key, publishes
  their public halves as a JWKS (RFC 7517 §5) and mints JWTs (RFC 7519) with the registered claims the guide's
  pre-check reads (``exp``, ``iat``, ``nbf``; guide 2715-2740) and those its example authorizer verifies (``iss``,
  ``aud``; guide 3040-3216). It also keeps an *impostor* key, never published, to forge a bad signature.
* :class:`LoopbackHttp` serves canned answers on 127.0.0.1 in a thread (the JWKS document, and HTTP authorizers
  that answer in the guide's shape ``{"isTokenValid", "roleArn"}`` (guide 2850-2856), slowly, with an error status
  or with garbage) and records every request it receives.
* :func:`crashing_authorizer` and :func:`slow_authorizer` are Lambda-style handlers (``handler(event, context)``)
  for the ``python:`` authorizer spec; the server imports them when its ``PYTHONPATH`` names the repository.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

__all__ = [
    "CRASH_DETAIL",
    "SLOW_SECONDS",
    "IdentityProvider",
    "LoopbackHttp",
    "Reply",
    "constant",
    "crashing_authorizer",
    "slow_authorizer",
]

SLOW_SECONDS = 3.0  # the slow authorizers sleep over the guide's 1-second budget (guide 2745-2750)
CRASH_DETAIL = "authorizer exploded: internal-detail-7f3a"  # must reach the server log, never the client

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64url(raw: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _SigningKey:
    kid: str
    alg: str
    private: _PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return jwk | {"kid": self.kid, "alg": self.alg, "use": "sig"}


class IdentityProvider:
    """A test IdP: two published signing keys (RS256 ``rsa-1``, ES256 ``ec-1``) and one impostor key."""

    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._keys = {
            "RS256": _SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ES256": _SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        }
        self._impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document of the published keys."""
        return {"keys": [key.public_jwk() for key in self._keys.values()]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for now (issued now, expiring in 10 minutes); an override of None removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "user-1",
            "iat": now,
            "exp": now + 600,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(self, alg: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
        """A JWT signed by the published key of ``alg``; ``kid`` overrides the header's key id."""
        key = self._keys[alg]
        return jwt.encode(self.claims(**overrides), key.private, algorithm=alg, headers={"kid": kid or key.kid})

    def forged(self, **overrides: Any) -> str:
        """A JWT naming the published RSA key's ``kid`` but signed by the impostor key: a bad signature."""
        return jwt.encode(self.claims(**overrides), self._impostor, algorithm="RS256", headers={"kid": "rsa-1"})

    def tampered(self, **overrides: Any) -> str:
        """A validly signed JWT whose payload was then replaced (``sub`` changed): the signature no longer holds."""
        header, _, signature = self.token().split(".")
        _, payload, _ = self.token(sub="someone-else", **overrides).split(".")
        return f"{header}.{payload}.{signature}"

    def unsigned(self, **overrides: Any) -> str:
        """An Unsecured JWT (RFC 7519 §6): header ``alg: none``, an empty signature."""
        header = _b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
        return f"{header}.{_b64url(json.dumps(self.claims(**overrides)).encode())}."


@dataclass(frozen=True)
class Reply:
    """A canned HTTP answer, sent after ``delay`` seconds."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0

    @classmethod
    def json(cls, document: object, status: int = 200, delay: float = 0.0) -> Reply:
        return cls(status, json.dumps(document).encode(), "application/json", delay)


@dataclass(frozen=True)
class Received:
    """One request the loopback server answered."""

    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Route = Callable[[], Reply]


def constant(reply: Reply) -> Route:
    """A route that always answers ``reply``."""
    return lambda: reply


@dataclass
class LoopbackHttp:
    """An HTTP server on 127.0.0.1 (a free port) answering ``(method, path)`` with canned replies, in a thread."""

    routes: Mapping[tuple[str, str], Route]
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LoopbackHttp:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.received.append(Received(self.command, self.path, body))
                route = owner.routes.get((self.command, self.path))
                reply = route() if route is not None else Reply(404, b"not found", "text/plain")
                time.sleep(reply.delay)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True  # a slow reply still sleeping never blocks stop()
        threading.Thread(target=server.serve_forever, name="loopback-http", daemon=True).start()
        self._server = server
        return self

    def url(self, path: str) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def crashing_authorizer(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """A Lambda-style authorizer that always raises (an execution failure, guide 3000-3030)."""
    raise RuntimeError(CRASH_DETAIL)


def slow_authorizer(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """A Lambda-style authorizer that answers "valid, no role" only after :data:`SLOW_SECONDS`."""
    time.sleep(SLOW_SECONDS)
    return {"isTokenValid": True, "roleArn": ""}
