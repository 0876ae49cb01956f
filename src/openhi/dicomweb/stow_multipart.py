"""STOW-RS request bodies: which media type was sent, and a multipart body split into one file per part.

PS3.18 §10.5.1 and §8.6.1.2 (guide 1800-1880): a Store request carries either one ``application/dicom``
instance, or ``multipart/related; type="application/dicom"; boundary=...`` whose parts each carry
``Content-Type: application/dicom`` (RFC 2387 / RFC 2046 §5.1). Any other media type is 415; a multipart
type without a usable boundary, or a body that is not a well-formed multipart message (no opening delimiter,
no closing delimiter, a broken part header), is 400. The split streams the spooled body through
python-multipart's ``MultipartParser`` in chunks, writing each part's bytes to its own file as they arrive,
so memory stays bounded by one chunk whatever the body's size (up to 1 GB, guide 1810). A preamble before the
first delimiter and an epilogue after the closing one are ignored, as RFC 2046 says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from openhi.errors import OpenHIError, ValidationError

DICOM = "application/dicom"
MULTIPART_RELATED = "multipart/related"
CHUNK = 1024 * 1024
MAX_BOUNDARY = 70  # RFC 2046 §5.1.1
MAX_PREAMBLE = 64 * 1024
MAX_PARTS = 10_000

# python-multipart logs every parse error it raises; the request's 400 already says it.
logging.getLogger("python_multipart.multipart").setLevel(logging.CRITICAL)


class UnsupportedMediaTypeError(OpenHIError):
    """The request's Content-Type is not one STOW-RS accepts (HTTP 415, PS3.18 §10.5.3.1)."""

    code = "UnsupportedMediaTypeException"


@dataclass(frozen=True)
class BodyType:
    """What the request's Content-Type says: one instance, or multipart with this boundary."""

    multipart: bool
    boundary: bytes = b""


def body_type(content_type: str) -> BodyType:
    """Classify the request's Content-Type header (415 / 400 as the module docstring says)."""
    media, params = parse_options_header(content_type or "")
    media_type = media.decode("latin-1").strip().lower()
    if media_type == DICOM:
        return BodyType(multipart=False)
    if media_type != MULTIPART_RELATED:
        shown = media_type or "none"
        raise UnsupportedMediaTypeError(
            f"Content-Type {shown} is not supported: send application/dicom or "
            'multipart/related; type="application/dicom"'
        )
    part_type = params.get(b"type", b"").decode("latin-1").strip().lower()
    if part_type and part_type != DICOM:
        raise UnsupportedMediaTypeError(
            f'multipart/related; type="{part_type}" is not supported: only type="application/dicom" parts are stored'
        )
    boundary = params.get(b"boundary", b"")
    if not boundary:
        raise ValidationError("the multipart/related Content-Type has no boundary parameter", field="Content-Type")
    if len(boundary) > MAX_BOUNDARY:
        raise ValidationError(f"the multipart boundary is longer than {MAX_BOUNDARY} characters", field="Content-Type")
    return BodyType(multipart=True, boundary=boundary)


@dataclass(frozen=True)
class SplitPart:
    """One part of a multipart body, written to ``path`` (1-based ``number`` in body order)."""

    number: int
    path: Path
    size: int
    content_type: str  # the part's media type, lower case; "" when the part has no Content-Type header

    @property
    def is_dicom(self) -> bool:
        """True for ``application/dicom`` parts (a part without Content-Type takes the request's ``type``)."""
        return self.content_type in ("", DICOM)


class _Splitter:
    """Callbacks of one ``MultipartParser`` run: headers of the current part, its file, the finished parts."""

    def __init__(self, directory: Path, name: Callable[[int], str], max_parts: int) -> None:
        self.directory, self.name, self.max_parts = directory, name, max_parts
        self.parts: list[SplitPart] = []
        self.ended = False
        self._out: BinaryIO | None = None
        self._size = 0
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        if len(self.parts) >= self.max_parts:
            raise ValidationError(f"the request has more than {self.max_parts} parts")
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        path = self.directory / self.name(len(self.parts) + 1)
        self._out = path.open("wb")
        self._size = 0

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
            self._size += end - start

    def _part_end(self) -> None:
        if self._out is None:  # a part without the blank line after its headers
            raise ValidationError("a multipart part has no header/body separator")
        self._out.close()
        media, _ = parse_options_header(self._headers.get("content-type", ""))
        number = len(self.parts) + 1
        path = Path(self._out.name)
        self.parts.append(SplitPart(number, path, self._size, media.decode("latin-1").strip().lower()))
        self._out = None

    def _end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _skip_preamble(source: BinaryIO, boundary: bytes, chunk_size: int) -> bytes:
    """Read up to the first delimiter line; return the bytes from that delimiter on (400 when there is none)."""
    delimiter = b"--" + boundary
    buffer = b""
    while True:
        position = 0 if buffer.startswith(delimiter) else buffer.find(b"\r\n" + delimiter)
        if position > 0:
            position += 2
        if position >= 0:
            return buffer[position:]
        if len(buffer) > MAX_PREAMBLE + len(delimiter) + 2:
            break
        chunk = source.read(chunk_size)
        if not chunk:
            break
        buffer += chunk
    raise ValidationError("the multipart body does not start with its boundary delimiter", field="body")


def split_multipart(
    source: BinaryIO,
    boundary: bytes,
    directory: Path,
    name: Callable[[int], str] = lambda n: f"part-{n:05d}.dcm",
    *,
    chunk_size: int = CHUNK,
    max_parts: int = MAX_PARTS,
) -> list[SplitPart]:
    """Stream ``source`` (a multipart/related body) into one file per part under ``directory``.

    Raises ValidationError (400) for a malformed message; the files of the parts already written stay in
    ``directory`` (the caller removes the directory).
    """
    splitter = _Splitter(directory, name, max_parts)
    parser = MultipartParser(boundary, splitter.callbacks())  # type: ignore[arg-type]
    try:
        data = _skip_preamble(source, boundary, chunk_size)
        while data:
            parser.write(data)
            if splitter.ended:
                break  # the epilogue is ignored
            data = source.read(chunk_size)
        parser.finalize()
    except MultipartParseError as exc:
        raise ValidationError(f"malformed multipart body: {exc}", field="body") from exc
    finally:
        splitter.close()
    if not splitter.ended:
        raise ValidationError("the multipart body ends before its closing boundary delimiter", field="body")
    if not splitter.parts:
        raise ValidationError("the multipart body has no parts", field="body")
    return splitter.parts
