"""CORS for browser viewers (OHIF, Cornerstone): which origins, methods and headers a page may use.

Viewers served from another origin need ``Access-Control-Allow-Origin`` on every answer, errors included, and a
preflight that allows ``Authorization`` (issue 5 §4; OHIF ``deployment/cors.md``). The work is done by
Starlette's ``CORSMiddleware`` placed outside both endpoints, so a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``, sent unsigned by browsers: Fetch standard §4.8) is answered before SigV4 and
before the native API's router, and every other answer, 404/405 fallbacks and error bodies included, gets the
CORS headers on the way out. This module holds the policy (the lists below) and reads the setting
``cors_allowed_origins``: comma-separated origins, ``*`` for any, empty for none (no CORS headers at all).
"""

from __future__ import annotations

import re

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from openhi.errors import ValidationError

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# Fetch §4.8: a preflight must list every non-safelisted header the page sends. Authorization / X-Amz-* carry
# SigV4 (or a bearer token); Range and If-None-Match are conditional and partial reads of WADO-RS.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Range",
    "If-None-Match",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "X-Amz-User-Agent",
    "Accept-Encoding",
)
# Fetch §3.2.5: a page reads only safelisted response headers unless they are exposed.
EXPOSED_HEADERS = (
    "ETag",
    "Content-Range",
    "Content-Length",
    "Content-Location",
    "Content-Type",
    "x-amzn-RequestId",
    "x-amzn-ErrorType",
)
PREFLIGHT_MAX_AGE_SECONDS = 600

# RFC 6454 §6.1: an origin is scheme "://" host [":" port], nothing after it.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", re.IGNORECASE)


def parse_origins(setting: str) -> tuple[str, ...]:
    """The allowed origins of the setting; ``("*",)`` for any, ``()`` for none.

    Raises ValidationError for an entry that is not an origin (a path or a trailing slash never matches the
    ``Origin`` header a browser sends, so it is refused at start instead of failing silently).
    """
    entries = tuple(entry.strip() for entry in setting.split(",") if entry.strip())
    if "*" in entries:
        return ("*",)
    for entry in entries:
        if not _ORIGIN.fullmatch(entry):
            raise ValidationError(
                f"setting 'cors_allowed_origins': {entry!r} is not an origin (scheme://host[:port])",
                field="cors_allowed_origins",
            )
    return entries


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """The middleware for ``origins`` (none when the list is empty: CORS is off)."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
    ]
