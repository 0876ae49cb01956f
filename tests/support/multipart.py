"""Reading multipart/related bodies back with the standard library's MIME parser (RFC 2046 §5.1), a parser
independent of OpenHI's writer and of the conformance checker's strict framing checks."""

from __future__ import annotations

import email.message
import email.parser


def stdlib_parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of each part of ``body`` sent with the Content-Type ``content_type``."""
    message = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    assert message.is_multipart()
    parts: list[tuple[dict[str, str], bytes]] = []
    payload = message.get_payload()
    assert isinstance(payload, list)
    for part in payload:
        assert isinstance(part, email.message.Message)
        content = part.get_payload(decode=True)
        assert isinstance(content, bytes)
        parts.append((dict(part.items()), content))
    return parts
