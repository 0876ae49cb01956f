"""STOW-RS bodies: media type classification and the streaming multipart split (RFC 2046, PS3.18 §10.5.1)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhi.dicomweb.stow_multipart import (
    BodyType,
    UnsupportedMediaTypeError,
    body_type,
    split_multipart,
)
from openhi.errors import ValidationError

BOUNDARY = b"0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"


def encode(parts: list[bytes], boundary: bytes = BOUNDARY, *, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """A multipart/related body the way the guide's shell example builds it (1860-1880)."""
    out = [preamble]
    for n, part in enumerate(parts):
        out.append(
            (b"\r\n" if n or preamble else b"") + b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n"
        )
        out.append(part)
    out.append(b"\r\n--" + boundary + b"--" + epilogue)
    return b"".join(out)


class Trickle(io.RawIOBase):
    """A source that answers each read with the next of the given chunk sizes (random split points)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data, self._sizes, self._reads, self._offset = data, sizes, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        step = self._sizes[self._reads % len(self._sizes)]
        self._reads += 1
        chunk = self._data[self._offset : self._offset + step]
        self._offset += len(chunk)
        return chunk


def read_parts(tmp_path: Path, body: bytes, boundary: bytes = BOUNDARY, **kwargs: int) -> list[bytes]:
    return [p.path.read_bytes() for p in split_multipart(io.BytesIO(body), boundary, tmp_path, **kwargs)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/dicom", BodyType(False)),
        ("Application/DICOM", BodyType(False)),
        ('multipart/related; type="application/dicom"; boundary="abc"', BodyType(True, b"abc")),
        ("multipart/related; boundary=abc; type=application/dicom", BodyType(True, b"abc")),
        ("multipart/related; boundary=abc", BodyType(True, b"abc")),  # no type: the parts' own types decide
    ],
)
def test_accepted_content_types(header: str, expected: BodyType) -> None:
    assert body_type(header) == expected


@pytest.mark.parametrize(
    "header",
    ["", "application/json", "application/dicom+json", 'multipart/related; type="application/dicom+xml"; boundary=a'],
)
def test_other_media_types_are_415(header: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        body_type(header)


@pytest.mark.parametrize(
    "header", ['multipart/related; type="application/dicom"', "multipart/related; boundary=" + "b" * 71]
)
def test_a_multipart_without_usable_boundary_is_400(header: str) -> None:
    with pytest.raises(ValidationError, match="boundary"):
        body_type(header)


def test_split_keeps_each_part_exactly(tmp_path: Path) -> None:
    parts = [b"DICM" * 10, b"", b"\r\n--" + BOUNDARY[:-1] + b"x\r\n", b"last\r\n"]
    split = split_multipart(io.BytesIO(encode(parts)), BOUNDARY, tmp_path)
    assert [p.path.read_bytes() for p in split] == parts
    assert [p.number for p in split] == [1, 2, 3, 4]
    assert [p.size for p in split] == [len(p) for p in parts]
    assert all(p.content_type == "application/dicom" and p.is_dicom for p in split)


def test_preamble_and_epilogue_are_ignored(tmp_path: Path) -> None:
    body = encode([b"one", b"two"], preamble=b"this is a preamble", epilogue=b"\r\nepilogue --" + BOUNDARY)
    assert read_parts(tmp_path, body) == [b"one", b"two"]


def test_part_media_types_are_reported(tmp_path: Path) -> None:
    body = (
        b"--B\r\nContent-Type: application/dicom\r\n\r\nA\r\n"
        b"--B\r\ncontent-type: Application/JSON; charset=utf-8\r\n\r\n{}\r\n"
        b"--B\r\n\r\nno header\r\n--B--\r\n"
    )
    split = split_multipart(io.BytesIO(body), b"B", tmp_path)
    assert [(p.content_type, p.is_dicom) for p in split] == [
        ("application/dicom", True),
        ("application/json", False),
        ("", True),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"no delimiter at all", "does not start"),
        (b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\ncut short", "closing boundary"),
        (b"--" + BOUNDARY + b"--", "no parts"),
        (b"--" + BOUNDARY + b"\r\nbroken header line without colon\r\n\r\nA\r\n--" + BOUNDARY + b"--", "malformed"),
    ],
)
def test_malformed_bodies_are_400(tmp_path: Path, body: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        split_multipart(io.BytesIO(body), BOUNDARY, tmp_path)


def test_too_many_parts(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="more than 2 parts"):
        split_multipart(io.BytesIO(encode([b"a", b"b", b"c"])), BOUNDARY, tmp_path, max_parts=2)


boundary_like = st.sampled_from(
    [b"--", b"\r\n", b"\r\n--", b"\r\n--" + BOUNDARY[:10], b"--" + BOUNDARY, b"\r\n--" + BOUNDARY + b"x", b"\r"]
)
part_data = st.lists(st.one_of(st.binary(max_size=40), boundary_like), max_size=8).map(b"".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(part_data, min_size=1, max_size=5),
    sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=10),
    chunk=st.integers(min_value=1, max_value=97),
)
def test_any_split_points_and_boundary_like_data_round_trip(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], sizes: list[int], chunk: int
) -> None:
    # Data that contains the full delimiter followed by CRLF or "--" cannot be sent in a part (RFC 2046 §5.1.1).
    parts = [p for p in parts if b"\r\n--" + BOUNDARY + b"\r\n" not in p and b"\r\n--" + BOUNDARY + b"--" not in p]
    parts = [
        p for p in parts if not (b"\r\n" + p).endswith(b"\r\n--" + BOUNDARY) and not p.startswith(b"--" + BOUNDARY)
    ]
    if not parts:
        return
    body = encode(parts, preamble=b"pre")
    directory = tmp_path_factory.mktemp("split")
    split = split_multipart(Trickle(body, sizes), BOUNDARY, directory, chunk_size=chunk)  # type: ignore[arg-type]
    assert [p.path.read_bytes() for p in split] == parts
