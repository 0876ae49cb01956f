"""The ``Accept`` header of DICOMweb requests: media ranges with ``type=``, ``transfer-syntax=`` and q-values.

PS3.18 §8.7 (Acceptable Media Types): a request lists media ranges, each optionally with parameters, as in
RFC 9110 §12.5.1. DICOMweb adds two parameters: ``type`` names the media type of the parts of a
``multipart/related`` payload (§8.6.1, RFC 2387) and ``transfer-syntax`` names the Transfer Syntax UID of the
content (§8.7.3.5.2; ``*`` means the origin server's choice, which HealthImaging defines as the stored syntax,
guide 1960-1975). ``q`` weights ranges (RFC 9110 §12.4.2); ranges of equal weight keep the client's order, and
``q=0`` means "not acceptable". PS3.18 §8.3.3.1 also lets the media ranges come in an ``accept`` query
parameter, which then takes the place of the header.

Stable API shared by the WADO-RS and rendered/thumbnail handlers:

- :func:`parse_accept` parses a header value into :class:`MediaRange` s, best first;
- :func:`requested_ranges` reads them from a request (the ``accept`` query parameter, else the header);
- :class:`MediaRange` tells whether it is multipart, its ``part_type`` (the payload's media type: ``type=`` for
  multipart, the media type itself otherwise), its ``transfer_syntax`` and whether it ``matches`` a media type
  (``dicomweb.transfer.media_type_matches``, wildcards).

An absent or empty header is ``*/*``. A media range that is not ``type/subtype``, or a q-value that is not a
number in [0, 1], is a malformed request (400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from openhi.dicomweb.transfer import media_type_matches
from openhi.errors import BadRequestError

MULTIPART_RELATED = "multipart/related"
ANY = "*/*"

_TOKEN = re.compile(r"^[A-Za-z0-9!#$&^_.+*-]+/[A-Za-z0-9!#$&^_.+*-]+$")
_Q = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


@dataclass(frozen=True)
class MediaRange:
    """One media range of an ``Accept`` header.

    ``media_type`` and parameter names are lower case; parameter values are unquoted (``type`` lower case,
    ``transfer-syntax`` as given). ``position`` is the range's index in the header (ties keep that order).
    """

    media_type: str
    params: Mapping[str, str] = field(default_factory=dict)
    q: float = 1.0
    position: int = 0

    @property
    def is_multipart(self) -> bool:
        """True for ``multipart/related`` (the payload is a multipart body of parts)."""
        return self.media_type == MULTIPART_RELATED

    @property
    def part_type(self) -> str:
        """The media type of the content: ``type=`` of a multipart range (``*/*`` when absent), else itself."""
        if self.is_multipart:
            return self.params.get("type", ANY)
        return self.media_type

    @property
    def transfer_syntax(self) -> str | None:
        """The ``transfer-syntax`` parameter (a UID or ``*``), or None when absent."""
        value = self.params.get("transfer-syntax")
        return value or None

    def matches(self, media_type: str) -> bool:
        """Whether this range's content type (``part_type``) covers ``media_type`` (wildcards ``*/*``, ``x/*``)."""
        return media_type_matches(self.part_type, media_type)


def _split(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _parse_range(text: str, position: int) -> MediaRange:
    pieces = _split(text, ";")
    media_type = pieces[0].strip().lower()
    if not _TOKEN.match(media_type):
        raise BadRequestError(f"Accept: {pieces[0].strip()!r} is not a media range (type/subtype)")
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        if not piece.strip():
            continue
        name, equals, raw = piece.partition("=")
        name = name.strip().lower()
        if not equals or not name:
            raise BadRequestError(f"Accept: parameter {piece.strip()!r} of {media_type} is not name=value")
        value = _unquote(raw)
        if name == "q":
            if not _Q.match(value):
                raise BadRequestError(f"Accept: q={value!r} of {media_type} is not a weight between 0 and 1")
            q = float(value)
        else:
            params[name] = value.lower() if name == "type" else value
    return MediaRange(media_type, params, q, position)


def parse_accept(value: str | None) -> list[MediaRange]:
    """Media ranges of an ``Accept`` value, best first (q descending, then header order); ``q=0`` dropped.

    An absent or blank value is ``[*/*]``. Raises ``BadRequestError`` (400) for a malformed range.
    """
    if value is None or not value.strip():
        return [MediaRange(ANY)]
    ranges = [_parse_range(text, position) for position, text in enumerate(_split(value, ",")) if text.strip()]
    ranges = [item for item in ranges if item.q > 0]
    return sorted(ranges, key=lambda item: (-item.q, item.position))


def requested_ranges(request: Request) -> list[MediaRange]:
    """The request's media ranges: the ``accept`` query parameter when given (PS3.18 §8.3.3.1), else the header."""
    query = request.query_params.getlist("accept")
    if query:
        return parse_accept(",".join(query))
    return parse_accept(request.headers.get("accept"))


def accept_header_given(request: Request) -> bool:
    """Whether the client named any media range (an ``Accept`` header or ``accept`` query parameter)."""
    return bool(request.query_params.getlist("accept")) or bool((request.headers.get("accept") or "").strip())
