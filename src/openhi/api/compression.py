"""gzip for JSON answers when the client accepts it, and for nothing else.

DICOM JSON metadata and QIDO results are large and compress ~10x; frames, images and ``application/dicom`` are
already compressed or are binary a client reads by byte ranges, so they are never touched (RFC 9110 §14.1.2:
a Range addresses the representation as sent, which must stay the identity encoding). Rules, per answer:

- compress only when the request's ``Accept-Encoding`` accepts ``gzip`` (RFC 9110 §12.5.3, ``q=0`` refuses),
  the method is not HEAD, the media type is ``application/json`` or ``application/dicom+json``, the status is
  not 206/204/304, the answer carries no ``Content-Encoding`` already (the native GetImageSetMetadata is gzip
  from the store) and its body reaches ``minimum_size`` bytes;
- every JSON answer gets ``Vary: Accept-Encoding`` (a cache must not serve the gzip body to a client that did
  not ask for it); a strong ``ETag`` of a compressed answer becomes weak (RFC 9110 §8.8.1: the strong tag
  names the identity bytes);
- a streamed body stays streamed: chunks are compressed as they come (memory bounded by zlib's window), only
  the first ``minimum_size`` bytes are held to decide.

Starlette's GZipMiddleware compresses every media type, so this small middleware replaces it.
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE_TYPES = frozenset({"application/json", "application/dicom+json"})
MINIMUM_SIZE = 1024
_NO_BODY_STATUSES = frozenset({204, 206, 304})
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def accepts_gzip(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` value accepts gzip (by name or ``*``) with a non-zero weight."""
    named: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding.strip():
            named[coding.strip().lower()] = weight
    if "gzip" in named:
        return named["gzip"] > 0
    if "x-gzip" in named:
        return named["x-gzip"] > 0
    return named.get("*", 0.0) > 0


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


class SelectiveGZipMiddleware:
    """Compress JSON answers with gzip under the rules of the module docstring."""

    def __init__(self, app: ASGIApp, minimum_size: int = MINIMUM_SIZE, level: int = 6) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = scope["method"] != "HEAD" and accepts_gzip(Headers(scope=scope).get("accept-encoding", ""))
        await self.app(scope, receive, _Responder(send, wanted, self.minimum_size, self.level).send)


class _Responder:
    """The ``send`` wrapper of one response: decides at the start, then passes or compresses the body."""

    def __init__(self, send: Send, wanted: bool, minimum_size: int, level: int) -> None:
        self._send = send
        self._wanted = wanted
        self._minimum_size = minimum_size
        self._level = level
        self._start: Message = {}
        self._held: list[bytes] = []
        self._held_size = 0
        self._compressor: zlib._Compress | None = None
        self._passing = True

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._on_start(message)
            if self._passing:
                await self._send(message)
            return
        if self._passing:
            await self._send(message)
            return
        if kind != "http.response.body":  # e.g. http.response.pathsend: nothing to compress, send as it is
            if self._compressor is None:
                await self._send_identity(None)
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self._compressor is not None:
            await self._emit(self._compressor, self._compressor.compress(body), more)
            return
        self._held.append(body)
        self._held_size += len(body)
        if more and self._held_size < self._minimum_size:
            return
        held, self._held = b"".join(self._held), []
        if not more and self._held_size < self._minimum_size:
            await self._send_identity(held)
        else:
            await self._begin_compressed(held, more)

    def _on_start(self, message: Message) -> None:
        headers = MutableHeaders(scope=message)
        if _media_type(headers) not in COMPRESSIBLE_TYPES:
            return
        headers.add_vary_header("Accept-Encoding")
        if (
            not self._wanted
            or "content-encoding" in headers
            or "content-range" in headers
            or message.get("status", 200) in _NO_BODY_STATUSES
        ):
            return
        self._start = message
        self._passing = False

    async def _send_identity(self, body: bytes | None) -> None:
        """Send the held start (and the held body when given) unchanged; pass everything after."""
        self._passing = True
        await self._send(self._start)
        if body is not None:
            await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def _begin_compressed(self, held: bytes, more: bool) -> None:
        compressor = self._compressor = zlib.compressobj(self._level, zlib.DEFLATED, _GZIP_WBITS)
        headers = MutableHeaders(scope=self._start)
        headers["Content-Encoding"] = "gzip"
        etag = headers.get("etag")
        if etag is not None and not etag.startswith("W/"):
            headers["ETag"] = f"W/{etag}"
        compressed = compressor.compress(held)
        if more:
            del headers["Content-Length"]
        else:
            compressed += compressor.flush()
            headers["Content-Length"] = str(len(compressed))
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": compressed, "more_body": more})

    async def _emit(self, compressor: zlib._Compress, compressed: bytes, more: bool) -> None:
        if not more:
            compressed += compressor.flush()
        if compressed or not more:
            await self._send({"type": "http.response.body", "body": compressed, "more_body": more})
