"""Streaming ``multipart/related`` answers (PS3.18 §8.6.1.2, RFC 2387, RFC 2046 §5.1).

The body is written part by part, so a study of gigabytes never sits in memory: each part is produced lazily
by its iterator (the P10 of one instance, one frame) and its content may itself be an iterator of chunks.
Layout::

    --BOUNDARY CRLF
    Content-Type: <part type>[; transfer-syntax=<uid>] CRLF
    Content-Location: <url> CRLF                     (when known: PS3.18 §8.6.1.2 asks it of bulk data parts)
    CRLF
    <content> CRLF
    --BOUNDARY CRLF
    ...
    --BOUNDARY-- CRLF

The boundary is random (128 bits from ``secrets``), so it cannot occur in binary content except by chance of
2^-128 per position. The top-level ``Content-Type`` is ``multipart/related; type="<root type>";
boundary=<boundary>`` (plus ``transfer-syntax`` when every part shares one).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from starlette.responses import Response, StreamingResponse

CRLF = b"\r\n"


def new_boundary() -> str:
    """A random boundary token (RFC 2046 §5.1.1: at most 70 characters from a safe set)."""
    return f"openhi-{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Part:
    """One body part: its Content-Type, optional Content-Location and other headers, and its content."""

    content_type: str
    content: bytes | Iterable[bytes]
    location: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def head(self, boundary: str) -> bytes:
        """The delimiter line and the part's header block, ending with the empty line."""
        lines = [f"--{boundary}", f"Content-Type: {self.content_type}"]
        if self.location:
            lines.append(f"Content-Location: {self.location}")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def content_type(root_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    """The top-level Content-Type of a multipart/related answer whose parts are ``root_type``."""
    value = f'multipart/related; type="{root_type}"; boundary={boundary}'
    return f"{value}; transfer-syntax={transfer_syntax}" if transfer_syntax else value


def part_type(media_type: str, transfer_syntax: str | None = None) -> str:
    """A part's Content-Type: the media type with its ``transfer-syntax`` parameter (PS3.18 §8.7.3.5.2)."""
    return f"{media_type}; transfer-syntax={transfer_syntax}" if transfer_syntax else media_type


def body(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The multipart body, chunk by chunk; parts (and their content) are pulled one at a time."""
    for part in parts:
        if isinstance(part.content, bytes | bytearray | memoryview):
            yield b"".join((part.head(boundary), part.content, CRLF))  # one chunk: one hop to the event loop
            continue
        yield part.head(boundary)
        yield from part.content
        yield CRLF
    yield f"--{boundary}--".encode("latin-1") + CRLF


def coalesced(chunks: Iterable[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """Small chunks joined up to about ``size`` bytes: a streamed sync iterator hops to the thread pool and back
    once per chunk, which costs more than copying a few small headers into the next chunk."""
    pending: list[bytes] = []
    pending_bytes = 0
    for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= size:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield b"".join(pending)


def buffered(parts: Iterable[Part], root_type: str, transfer_syntax: str | None = None) -> Response:
    """A small multipart/related answer built at once (one frame: no streaming machinery needed)."""
    boundary = new_boundary()
    return Response(b"".join(body(parts, boundary)), media_type=content_type(root_type, boundary, transfer_syntax))


class MultipartResponse(StreamingResponse):
    """A streamed ``multipart/related`` answer; iteration runs in the thread pool (blocking reads are fine)."""

    def __init__(
        self,
        parts: Iterable[Part],
        root_type: str,
        *,
        status_code: int = 200,
        transfer_syntax: str | None = None,
        headers: Mapping[str, str] | None = None,
        boundary: str | None = None,
    ) -> None:
        boundary = boundary or new_boundary()
        super().__init__(
            coalesced(body(parts, boundary)),
            status_code=status_code,
            headers=dict(headers or {}),
            media_type=content_type(root_type, boundary, transfer_syntax),
        )
