"""Example authorizer: verify the bearer JWT against the IdP's JWKS, then answer one configured role.

This is the guide's implementation example (3040-3216, a Cognito access-token validator in a Lambda) made
generic and hardened, with PyJWT instead of python-jose:

* **Signature**: RS256 (RFC 7518 §3.3) or ES256 (§3.4) only; the key is the JWKS entry (RFC 7517) whose ``kid``
  is the token header's, and its algorithm must equal the header's ``alg`` (no ``none``, no HMAC with a public
  key as secret, no algorithm confusion).
* **Claims** (RFC 7519 §4.1): ``iss`` equals the configured issuer, ``aud`` contains one of the configured
  audiences, ``exp`` and ``iat`` are required, ``exp`` / ``nbf`` are enforced with :data:`LEEWAY_SECONDS`.
* **JWKS cache** (guide 3052-3056: "cache the JWKS"): keys are kept :data:`JWKS_TTL_SECONDS` (1 hour, as the
  guide's example); a token whose ``kid`` is unknown triggers one refetch (key rotation), at most once per
  :data:`JWKS_REFRESH_INTERVAL_SECONDS` so that tokens with made-up ``kid`` values cannot hammer the IdP. If a
  refresh fails, the keys already known are kept; with no keys at all the authorizer *fails* (an exception,
  hence 424 ``AuthorizerFailureException``) instead of calling a good token invalid.
* **Token cache** (guide 3052-3056: "cache valid access tokens"): a verified token is remembered (by its
  SHA-256) for :data:`TOKEN_CACHE_SECONDS` or until its ``exp``, whichever is sooner; the cache is bounded.

Answers follow guide 2850-2856: ``{"isTokenValid": true, "roleArn": <role>}`` for a verified token,
``{"isTokenValid": false, "roleArn": ""}`` otherwise.

Configuration, by environment variables read on the first call (as a Lambda reads its own):

``OPENHI_JWKS_URL``       the IdP's JWKS document (``https://issuer/.well-known/jwks.json``), required
``OPENHI_JWT_ISSUER``     the exact ``iss`` value, required
``OPENHI_JWT_AUDIENCE``   accepted ``aud`` values, comma-separated, required
``OPENHI_JWT_ROLE_ARN``   the role answered for every verified token (this module's ``handler``); see
                          :mod:`openhi.authorizers.examples.claims_to_roles` for a role chosen per claims
``OPENHI_JWKS_TIMEOUT``   seconds allowed to fetch the JWKS, default 0.5 (the whole call has 1 s)

A missing variable makes the handler raise ``AuthorizerError(AuthorizerMisconfigurationException)`` (424).
Use it as ``"python:openhi.authorizers.examples.jwks:handler"`` in the ``authorizers`` setting.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import jwt

from openhi.authorizers.port import AUTHORIZER_MISCONFIGURED
from openhi.errors import AuthorizerError

__all__ = [
    "ALGORITHMS",
    "EnvHandler",
    "InvalidTokenError",
    "JwksAuthorizer",
    "JwksCache",
    "JwksUnavailableError",
    "JwtVerifier",
    "authorizer_from_env",
    "handler",
    "require_env",
    "verifier_from_env",
]

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
JWKS_TTL_SECONDS = 3600.0
JWKS_REFRESH_INTERVAL_SECONDS = 10.0
JWKS_TIMEOUT_SECONDS = 0.5
TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 4096
LEEWAY_SECONDS = 5.0
MAX_JWKS_BYTES = 1024 * 1024

DENY: dict[str, Any] = {"isTokenValid": False, "roleArn": ""}


class InvalidTokenError(Exception):
    """The token is not one this authorizer accepts (the reason is for logs only)."""


class JwksUnavailableError(Exception):
    """No key set could be obtained from the IdP: the authorizer cannot decide."""


def _fetch_over_http(url: str, timeout: float) -> Mapping[str, Any]:
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        response = client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksUnavailableError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
        document: object = response.json()
    if not isinstance(document, Mapping):
        raise JwksUnavailableError(f"the JWKS at {url} is not a JSON object")
    return document


def _usable_keys(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise JwksUnavailableError("the JWKS has no 'keys' array")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue  # an encryption key never verifies a signature (RFC 7517 §4.2)
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            log.debug("JWKS key %s skipped: %s", entry.get("kid"), exc)
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


class JwksCache:
    """The IdP's signing keys by ``kid``: fetched lazily, kept ``ttl``, refreshed once on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = JWKS_TTL_SECONDS,
        refresh_interval_seconds: float = JWKS_REFRESH_INTERVAL_SECONDS,
        timeout_seconds: float = JWKS_TIMEOUT_SECONDS,
        fetch: Callable[[str, float], Mapping[str, Any]] = _fetch_over_http,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._ttl = ttl_seconds
        self._refresh_interval = refresh_interval_seconds
        self._timeout = timeout_seconds
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the JWKS was requested (observability, tests)

    def _refresh(self) -> None:
        self.fetches += 1
        self._fetched_at = self._monotonic()  # also on failure: a failing IdP is retried after the interval
        try:
            self._keys = _usable_keys(self._fetch(self._url, self._timeout))
        except (httpx.HTTPError, ValueError, JwksUnavailableError) as exc:
            log.warning("JWKS %s could not be fetched: %s (keeping %d known keys)", self._url, exc, len(self._keys))
            if not self._keys:
                raise JwksUnavailableError(f"the JWKS at {self._url} could not be fetched") from exc

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key of ``kid``, refetching the set when it is stale or (rate-limited) when ``kid`` is unknown."""
        with self._lock:
            now = self._monotonic()
            if self._fetched_at is None or now - self._fetched_at >= self._ttl:
                self._refresh()
            elif kid not in self._keys and now - self._fetched_at >= self._refresh_interval:
                log.info("JWKS %s: unknown kid %r, refetching (key rotation?)", self._url, kid)
                self._refresh()
            return self._keys.get(kid)


class JwtVerifier:
    """Verifies a JWT's signature against a :class:`JwksCache` and its registered claims."""

    def __init__(
        self,
        jwks: JwksCache,
        issuer: str,
        audiences: Sequence[str],
        *,
        leeway_seconds: float = LEEWAY_SECONDS,
    ) -> None:
        if not issuer or not audiences:
            raise ValueError("an issuer and at least one audience are required")
        self._jwks = jwks
        self._issuer = issuer
        self._audiences = list(audiences)
        self._leeway = leeway_seconds

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; ``InvalidTokenError`` for any token that does not pass."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"unreadable header: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise InvalidTokenError(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise InvalidTokenError("the header has no 'kid'")
        key = self._jwks.key(kid)
        if key is None:
            raise InvalidTokenError(f"no signing key {kid!r} in the JWKS")
        if key.algorithm_name != alg:
            raise InvalidTokenError(f"key {kid!r} is for {key.algorithm_name}, the token says {alg}")
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audiences,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc


class _TokenCache:
    """Claims of recently verified tokens, by SHA-256 of the token; bounded, thread-safe."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds = seconds
        self._size = size
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def get(self, token: str, now: float) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(self._digest(token))
            if entry is None or entry[0] <= now:
                return None
            return entry[1]

    def put(self, token: str, claims: dict[str, Any], now: float) -> None:
        expiry = min(now + self._seconds, float(claims["exp"]))
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                while len(self._entries) >= self._size:  # still full: forget the oldest
                    del self._entries[next(iter(self._entries))]
            self._entries[self._digest(token)] = (expiry, claims)


class JwksAuthorizer:
    """A Lambda-style authorizer: ``(event, context) -> {"isTokenValid", "roleArn"}``.

    ``role_for(claims)`` chooses the role of a verified token ("" denies it explicitly, guide 2855).
    """

    def __init__(
        self,
        verifier: JwtVerifier,
        role_for: Callable[[Mapping[str, Any]], str],
        *,
        cache_seconds: float = TOKEN_CACHE_SECONDS,
        cache_size: int = TOKEN_CACHE_SIZE,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._role_for = role_for
        self._cache = _TokenCache(cache_seconds, cache_size)
        self._wall_clock = wall_clock

    def __call__(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        token = event.get("bearerToken") if isinstance(event, Mapping) else None
        if not isinstance(token, str) or not token:
            return dict(DENY)
        now = self._wall_clock()
        claims = self._cache.get(token, now)
        if claims is None:
            try:
                claims = self._verifier.verify(token)
            except InvalidTokenError as exc:
                log.info("token refused for %s/%s: %s", event.get("datastoreId"), event.get("operation"), exc)
                return dict(DENY)
            self._cache.put(token, claims, now)
        return {"isTokenValid": True, "roleArn": self._role_for(claims)}


def require_env(environ: Mapping[str, str], name: str) -> str:
    """The non-empty value of ``name``, else ``AuthorizerError(AuthorizerMisconfigurationException)``."""
    value = environ.get(name, "").strip()
    if not value:
        raise AuthorizerError(AUTHORIZER_MISCONFIGURED, f"Authorizer misconfigured: {name} is not set")
    return value


def verifier_from_env(environ: Mapping[str, str]) -> JwtVerifier:
    """A verifier configured by ``OPENHI_JWKS_URL``, ``OPENHI_JWT_ISSUER``, ``OPENHI_JWT_AUDIENCE``."""
    url = require_env(environ, "OPENHI_JWKS_URL")
    if not url.startswith(("https://", "http://")):
        raise AuthorizerError(AUTHORIZER_MISCONFIGURED, "Authorizer misconfigured: OPENHI_JWKS_URL is not http(s)")
    issuer = require_env(environ, "OPENHI_JWT_ISSUER")
    audiences = [a.strip() for a in require_env(environ, "OPENHI_JWT_AUDIENCE").split(",") if a.strip()]
    try:
        timeout = float(environ.get("OPENHI_JWKS_TIMEOUT", "") or JWKS_TIMEOUT_SECONDS)
    except ValueError as exc:
        raise AuthorizerError(
            AUTHORIZER_MISCONFIGURED, "Authorizer misconfigured: OPENHI_JWKS_TIMEOUT is not a number"
        ) from exc
    return JwtVerifier(JwksCache(url, timeout_seconds=timeout), issuer, audiences)


def authorizer_from_env(environ: Mapping[str, str]) -> JwksAuthorizer:
    """The authorizer answering ``OPENHI_JWT_ROLE_ARN`` for every verified token."""
    role_arn = require_env(environ, "OPENHI_JWT_ROLE_ARN")
    return JwksAuthorizer(verifier_from_env(environ), lambda _claims: role_arn)


class EnvHandler:
    """A module-level ``handler(event, context)`` built from the environment on its first call (then kept)."""

    def __init__(self, build: Callable[[Mapping[str, str]], JwksAuthorizer]) -> None:
        self._build = build
        self._authorizer: JwksAuthorizer | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
        with self._lock:
            if self._authorizer is None:
                self._authorizer = self._build(os.environ)
            authorizer = self._authorizer
        return authorizer(event, context)

    def reset(self) -> None:
        """Forget the built authorizer (the next call reads the environment again)."""
        with self._lock:
            self._authorizer = None


handler = EnvHandler(authorizer_from_env)
