"""Accept header parsing for DICOMweb (PS3.18 §8.7, RFC 9110 §12.5.1)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from openhi.api.dicomweb.accept import MediaRange, parse_accept, requested_ranges
from openhi.dicomweb.transfer import media_type_matches
from openhi.errors import BadRequestError


def test_absent_or_blank_is_anything() -> None:
    assert parse_accept(None) == [MediaRange("*/*")]
    assert parse_accept("  ") == [MediaRange("*/*")]


def test_multipart_with_quoted_type_and_transfer_syntax() -> None:
    [wanted] = parse_accept('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1')
    assert wanted.is_multipart
    assert wanted.part_type == "application/dicom"
    assert wanted.transfer_syntax == "1.2.840.10008.1.2.1"
    assert wanted.matches("application/dicom")
    assert not wanted.matches("application/octet-stream")


def test_unquoted_type_and_wildcard_syntax() -> None:
    [wanted] = parse_accept("multipart/related; type=application/octet-stream; transfer-syntax=*")
    assert (wanted.part_type, wanted.transfer_syntax) == ("application/octet-stream", "*")


def test_multipart_without_type_takes_anything() -> None:
    [wanted] = parse_accept("multipart/related")
    assert wanted.part_type == "*/*"
    assert wanted.matches("image/jphc")


def test_bare_media_type_is_its_own_part_type() -> None:
    [wanted] = parse_accept("application/dicom; transfer-syntax=1.2.840.10008.1.2.1")
    assert not wanted.is_multipart
    assert wanted.part_type == "application/dicom"


def test_q_values_order_and_zero_is_refusal() -> None:
    ranges = parse_accept(
        "multipart/related; type=image/jls; q=0.5, multipart/related; type=image/jphc, "
        "multipart/related; type=application/octet-stream; q=0.5, image/png; q=0"
    )
    assert [item.part_type for item in ranges] == ["image/jphc", "image/jls", "application/octet-stream"]


def test_commas_inside_quotes_do_not_split() -> None:
    [wanted] = parse_accept('multipart/related; type="image/jpeg"; x="a,b"')
    assert wanted.params["x"] == "a,b"


@pytest.mark.parametrize("value", ["garbage", "image/png; q=2", "image/png; q=x", "image/png; novalue"])
def test_malformed_ranges_are_bad_requests(value: str) -> None:
    with pytest.raises(BadRequestError):
        parse_accept(value)


def test_wildcards_match() -> None:
    assert media_type_matches("*/*", "image/jphc")
    assert media_type_matches("image/*", "image/jphc")
    assert not media_type_matches("image/*", "application/octet-stream")
    assert media_type_matches("IMAGE/JPHC", "image/jphc")


def _request(query: bytes, accept: bytes | None) -> Request:
    headers = [(b"accept", accept)] if accept is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": headers})


def test_accept_query_parameter_replaces_the_header() -> None:
    ranges = requested_ranges(_request(b"accept=image%2Fjphc", b"application/octet-stream"))
    assert [item.media_type for item in ranges] == ["image/jphc"]
    assert [item.media_type for item in requested_ranges(_request(b"", b"image/png"))] == ["image/png"]
