"""Opaque, tamper-proof pagination tokens.

A token carries the keyset position of the last item served and the scope it belongs to (operation
and filters). It is ``base64url(json) + "." + base64url(HMAC-SHA256)`` under a server secret, so a
client can neither forge a position nor reuse a token with other filters: either gives
ValidationException, as AWS does for an invalid ``nextToken``. Tokens expire after 24 hours. Every
process sharing an index must share the secret (it is derived from settings in ``bootstrap``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from openhi.errors import ValidationError

TOKEN_LIFETIME_SECONDS = 24 * 3600
T = TypeVar("T")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    """Encodes and checks pagination tokens under one secret."""

    def __init__(self, secret: bytes, lifetime_seconds: int = TOKEN_LIFETIME_SECONDS) -> None:
        self._secret = secret
        self._lifetime = lifetime_seconds

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:20]

    def encode(self, scope: str, position: Mapping[str, Any], now: float | None = None) -> str:
        """A token for ``position`` usable only with the same ``scope``."""
        issued = int(time.time() if now is None else now)
        body = json.dumps({"s": scope, "p": dict(position), "t": issued}, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, scope: str, token: str, now: float | None = None) -> dict[str, Any]:
        """The position inside ``token``; ValidationException when forged, expired or of another scope."""
        invalid = ValidationError("Invalid nextToken: it was not issued for this request", field="nextToken")
        try:
            body_text, mac_text = token.split(".")
            body = _unb64(body_text)
            mac = _unb64(mac_text)
        except (ValueError, TypeError) as exc:
            raise invalid from exc
        if not hmac.compare_digest(mac, self._mac(body)):
            raise invalid
        document = json.loads(body)
        if document.get("s") != scope:
            raise invalid
        current = time.time() if now is None else now
        if current - float(document.get("t", 0)) > self._lifetime:
            raise ValidationError("Invalid nextToken: the token has expired", field="nextToken")
        position = document.get("p")
        if not isinstance(position, dict):
            raise invalid
        return position

    def paginate(
        self, scope: str, rows: Sequence[T], limit: int, position: Callable[[T], Mapping[str, Any]]
    ) -> tuple[list[T], str | None]:
        """Cut ``rows`` (fetched as ``limit + 1``) to a page, plus the next page's token (None at the end)."""
        page = list(rows[:limit])
        token = self.encode(scope, position(page[-1])) if len(rows) > limit else None
        return page, token
