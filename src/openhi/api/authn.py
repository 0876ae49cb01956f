"""Authentication at the HTTP edge: a Starlette request -> the verified caller (SigV4).

Builds the pure ``auth.sigv4.SignedRequest`` from what arrived on the wire (raw path with its
percent-encoding, raw query, headers as sent, SHA-256 of the exact body) and verifies it against the
credential store. Shared by every surface that signs like AWS (native API now, DICOMweb later).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from starlette.requests import Request

from openhi.auth.credentials import CredentialStore
from openhi.auth.sigv4 import SignedRequest, VerifiedIdentity, verify
from openhi.clock import Clock


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


class SigV4Authenticator:
    """Verifies AWS Signature Version 4 on every request (service name ``medical-imaging``)."""

    def __init__(self, credentials: CredentialStore, clock: Clock, max_skew_seconds: int) -> None:
        self._credentials = credentials
        self._clock = clock
        self._max_skew = timedelta(seconds=max_skew_seconds)

    def authenticate(self, request: Request, body: bytes) -> VerifiedIdentity:
        """The caller's identity; AuthenticationError (403) when the signature does not hold."""
        return self.authenticate_digest(request, hashlib.sha256(body).hexdigest())

    def authenticate_digest(self, request: Request, payload_sha256: str) -> VerifiedIdentity:
        """As ``authenticate``, for a body already hashed while it was streamed to disk (STOW-RS)."""
        return verify(
            signed_request(request, payload_sha256),
            self._credentials.secret_for,
            self._clock(),
            max_skew=self._max_skew,
        )
