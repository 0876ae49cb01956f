"""Authentication at the HTTP edge: a Starlette request -> the verified caller (SigV4).

Builds the pure ``auth.sigv4.SignedRequest`` from what arrived on the wire (raw path with its
percent-encoding, raw query, headers as sent, SHA-256 of the exact body) and verifies it against the key's
secret and session token as the principal directory resolves them (``access.directory``: the root key, IAM
users' keys, STS session keys). Shared by every surface that signs like AWS (native API, DICOMweb, STS). A key
the directory has not cached costs one index round trip, on the calling thread.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Protocol

from starlette.requests import Request

from openhi.access.directory import ResolvedKey
from openhi.auth.sigv4 import DEFAULT_SERVICE, KeyMaterial, SignedRequest, verify
from openhi.clock import Clock
from openhi.iam.principals import Caller


def signed_request(request: Request, payload_sha256: str) -> SignedRequest:
    """The wire facts SigV4 signs, taken from the ASGI scope without re-encoding anything."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    return SignedRequest(
        method=request.method,
        raw_path=raw_path.decode("latin-1"),
        raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        payload_sha256=payload_sha256,
    )


class KeyResolver(Protocol):
    """Access key id -> secret, expected session token and caller (``access.directory.PrincipalDirectory``)."""

    def resolve(self, access_key_id: str) -> ResolvedKey | None: ...


class SigV4Authenticator:
    """Verifies AWS Signature Version 4 on every request, for one service name (``medical-imaging``, ``sts``)."""

    def __init__(self, keys: KeyResolver, clock: Clock, max_skew_seconds: int, service: str = DEFAULT_SERVICE) -> None:
        self._keys = keys
        self._clock = clock
        self._max_skew = timedelta(seconds=max_skew_seconds)
        self._service = service

    def authenticate(self, request: Request, body: bytes) -> Caller:
        """The caller who signed the request; AuthenticationError (403) when the signature does not hold."""
        return self.authenticate_digest(request, hashlib.sha256(body).hexdigest())

    def authenticate_digest(self, request: Request, payload_sha256: str) -> Caller:
        """As ``authenticate``, for a body already hashed while it was streamed to disk (STOW-RS)."""
        resolved: list[ResolvedKey] = []

        def lookup(access_key_id: str) -> KeyMaterial | None:
            found = self._keys.resolve(access_key_id)
            if found is None:
                return None
            resolved.append(found)
            return KeyMaterial(found.secret, found.session_token)

        verify(
            signed_request(request, payload_sha256),
            lookup,
            self._clock(),
            service=self._service,
            max_skew=self._max_skew,
        )
        return resolved[-1].caller
