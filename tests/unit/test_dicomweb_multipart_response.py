"""The streaming multipart/related writer (PS3.18 §8.6.1.2, RFC 2046 §5.1), read back with the stdlib parser."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tests.support.multipart import stdlib_parts

from openhi.api.dicomweb.multipart_response import (
    MultipartResponse,
    Part,
    body,
    coalesced,
    content_type,
    new_boundary,
    part_type,
)


def test_boundaries_are_random_and_valid() -> None:
    first, second = new_boundary(), new_boundary()
    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9-]{1,70}", first)


def test_parts_round_trip_with_headers_and_binary_content() -> None:
    boundary = new_boundary()
    binary = bytes(range(256)) * 3 + b"\r\n--" + boundary[:5].encode()
    parts = [
        Part(part_type("image/jphc", "1.2.840.10008.1.2.4.202"), binary, location="http://h/frames/1"),
        Part("application/octet-stream", iter([b"ab", b"", b"cd"]), location="http://h/frames/2"),
    ]
    root = content_type("image/jphc", boundary, "1.2.840.10008.1.2.4.202")
    data = b"".join(body(parts, boundary))
    assert data.startswith(f"--{boundary}\r\n".encode())
    assert data.endswith(f"\r\n--{boundary}--\r\n".encode())
    parsed = stdlib_parts(root, data)
    assert [headers["Content-Type"] for headers, _ in parsed] == [
        "image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202",
        "application/octet-stream",
    ]
    assert [headers["Content-Location"] for headers, _ in parsed] == ["http://h/frames/1", "http://h/frames/2"]
    assert [content for _, content in parsed] == [binary, b"abcd"]


def test_parts_are_pulled_lazily() -> None:
    pulled: list[int] = []

    def parts() -> Iterator[Part]:
        for number in range(3):
            pulled.append(number)
            yield Part("application/octet-stream", bytes([number]))

    stream = body(parts(), "b")
    next(stream)
    assert pulled == [0]


def test_response_content_type_names_type_and_boundary() -> None:
    response = MultipartResponse([Part("application/dicom", b"x")], "application/dicom", boundary="bnd")
    assert response.headers["content-type"] == 'multipart/related; type="application/dicom"; boundary=bnd'
    assert response.status_code == 200


def test_small_chunks_are_coalesced_and_large_ones_pass_whole() -> None:
    big = b"x" * 100
    chunks = [b"ab", b"", b"cd", big, b"ef", b"gh", b"i"]
    out = list(coalesced(iter(chunks), size=50))
    assert b"".join(out) == b"".join(chunks)
    assert out == [b"abcd" + big, b"efghi"]
    assert next(iter(coalesced([big], size=50))) is big  # one chunk above the size is not copied
    assert list(coalesced([], size=50)) == []
