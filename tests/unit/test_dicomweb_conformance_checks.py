"""The DICOMweb conformance checkers pass good answers and catch every kind of broken one.

Each rule of ``tests/support/dicomweb_conformance.py`` is shown failing on a deliberately broken sample, so the
conformance suite that relies on them cannot pass vacuously.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.support.dicomweb_conformance import (
    check_attribute,
    check_common_headers,
    check_dicom_json,
    check_dicom_json_body,
    check_error,
    check_multipart,
    check_negotiated,
    parse_accept,
    parse_media_type,
)

from openhi.dicom.dicom_json import convert

GOOD_DATASET: dict[str, Any] = {
    "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
    "00080018": {"vr": "UI", "Value": ["1.2.840.113619.2.55.3.1"]},
    "00081140": {
        "vr": "SQ",
        "Value": [
            {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}},
            {},
        ],
    },
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane", "Ideographic": "山田^太郎"}, None]},
    "00101010": {"vr": "AS"},
    "00181050": {"vr": "DS", "Value": [0.7, 1]},
    "00200013": {"vr": "IS", "Value": [12]},
    "00209165": {"vr": "AT", "Value": ["00100020"]},
    "00280010": {"vr": "US", "Value": [512]},
    "00281050": {"vr": "DS", "Value": [40, None]},
    "00282000": {"vr": "OB", "InlineBinary": "AAECAw=="},
    "7FE00010": {"vr": "OW", "BulkDataURI": "http://host/datastore/x/studies/1/series/2/instances/3/bulkdata/7"},
}


def broken(path: str, value: object) -> dict[str, Any]:
    """GOOD_DATASET with the member at ``tag/member`` replaced (or removed when value is ...)."""
    sample = copy.deepcopy(GOOD_DATASET)
    tag, _, member = path.partition("/")
    if value is ...:
        del sample[tag][member]
    elif member:
        sample[tag][member] = value
    else:
        sample[tag] = value
    return sample


# --- DICOM JSON -------------------------------------------------------------------------------------------


def test_good_dataset_passes() -> None:
    assert check_dicom_json([GOOD_DATASET]) == []
    assert check_dicom_json(GOOD_DATASET, array=False) == []
    assert check_dicom_json([], required=["00080018"]) == []


def test_openhi_converter_output_passes() -> None:
    document = {
        "SOPInstanceUID": "1.2.3.4",
        "PatientName": "Doe^Jane=山田^太郎",
        "ImageType": "ORIGINAL\\PRIMARY",
        "PixelSpacing": "0.5\\0.5",
        "InstanceNumber": "7",
        "ReferencedImageSequence": [{"ReferencedSOPInstanceUID": "1.2.3.5"}],
        "Rows": 64,
        "PatientComments": "",
    }
    assert check_dicom_json([convert(document)], required=["00080018"]) == []


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ({"0008018": {"vr": "UI", "Value": ["1.2"]}}, "not 8 uppercase hex"),
        ({"0008001a": {"vr": "UI", "Value": ["1.2"]}}, "not 8 uppercase hex"),
        ({"00100010": {"vr": "PN"}, "00080018": {"vr": "UI"}}, "ascending tag order"),
        (broken("00080018/vr", ...), "is not a PS3.5 VR"),
        (broken("00080018/vr", "XX"), "is not a PS3.5 VR"),
        (broken("00080018/Value", []), "non-empty array"),
        (broken("00080018/Value", "1.2.3"), "non-empty array"),
        (broken("00080018/InlineBinary", "AAAA"), "more than one of"),
        (broken("7FE00010/InlineBinary", "AAAA"), "more than one of"),
        (broken("00080018/Value", ["1.2.03"]), "not a UID"),
        (broken("00080018/Value", ["1." + "2" * 70]), "not a UID"),
        (broken("00080018/Value", [1.2]), "not a UID"),
        (broken("00100010/Value", ["Doe^Jane"]), "PN value must be an object"),
        (broken("00100010/Value", [{"Alphabetic": "A", "Nickname": "B"}]), "not Alphabetic/Ideographic/Phonetic"),
        (broken("00100010/Value", [{"Alphabetic": 5}]), "must be a string"),
        (broken("00081140/Value", ["not an item"]), "SQ item must be an object"),
        (broken("00081140/Value", [None]), "SQ item must be an object"),
        (broken("00081140/Value", [{"00081150": {"vr": "UI", "Value": []}}]), "non-empty array"),
        (broken("00081140/Value", [{"00081150": {"Value": ["1.2"]}}]), "not a PS3.5 VR"),
        (broken("00181050/Value", ["0.7"]), "DS value must be a JSON number"),
        (broken("00200013/Value", ["12"]), "IS value must be a JSON number"),
        (broken("00200013/Value", [1.5]), "IS value must be an integer"),
        (broken("00200013/Value", [True]), "IS value must be a JSON number"),
        (broken("00209165/Value", ["0010,0020"]), "AT value must be 8 uppercase hex"),
        (broken("00209165/Value", [1048608]), "AT value must be 8 uppercase hex"),
        (broken("00280010/Value", [70000]), "US value must be an integer"),
        (broken("00280010/Value", ["512"]), "US value must be an integer"),
        (broken("00080005/Value", [7]), "CS value must be a string"),
        (broken("00282000/InlineBinary", "not base64!"), "not base64"),
        (broken("00282000/Value", ["AAECAw=="]), "never Value"),
        (broken("7FE00010/BulkDataURI", ""), "URI string"),
        (broken("00080005/Extra", 1), "unknown member"),
        (broken("00080005", ["CS"]), "attribute must be an object"),
    ],
)
def test_broken_datasets_are_caught(sample: dict[str, Any], expected: str) -> None:
    problems = check_dicom_json([sample])
    assert any(expected in problem for problem in problems), problems


def test_top_level_must_be_an_array_of_objects() -> None:
    assert "JSON array" in check_dicom_json(GOOD_DATASET)[0]
    assert "must be an object" in check_dicom_json([GOOD_DATASET, ["x"]])[0]


def test_required_tags() -> None:
    assert check_dicom_json([GOOD_DATASET], required=["0020000D"]) == ["[0]: required 0020000D is missing"]


def test_body_must_be_utf8_json() -> None:
    assert check_dicom_json_body(json.dumps([GOOD_DATASET]).encode()) == []
    assert "not UTF-8 JSON" in check_dicom_json_body(b"[{")[0]
    assert "not UTF-8 JSON" in check_dicom_json_body('[{"00100010": "\xe9"}]'.encode("latin-1"))[0]


def test_single_valued_text() -> None:
    assert check_attribute("00204000", {"vr": "LT", "Value": ["a\\b"]}) == []
    assert "exactly one value" in check_attribute("00204000", {"vr": "LT", "Value": ["a", "b"]})[0]


def test_special_floats_and_big_integers() -> None:
    assert check_attribute("00189087", {"vr": "FD", "Value": [1.5, "NaN", "-Infinity"]}) == []
    assert check_attribute("00189087", {"vr": "FD", "Value": ["1.5"]}) != []
    assert check_attribute("00660040", {"vr": "UV", "Value": [1, "18446744073709551615"]}) == []
    assert check_attribute("00660040", {"vr": "UV", "Value": [-1]}) != []


# --- multipart --------------------------------------------------------------------------------------------

BOUNDARY = "a1b2c3d4-e5f6"
CONTENT_TYPE = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'


def multipart(*parts: bytes, boundary: str = BOUNDARY, close: bool = True, preamble: bytes = b"") -> bytes:
    body = preamble
    for index, part in enumerate(parts):
        body += (b"\r\n" if index or preamble else b"") + f"--{boundary}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + part
    if close:
        body += f"\r\n--{boundary}--\r\n".encode()
    return body


def test_good_multipart() -> None:
    problems, parts = check_multipart(CONTENT_TYPE, multipart(b"\x00\x01\r\n\x02", b""))
    assert problems == []
    assert [part.body for part in parts] == [b"\x00\x01\r\n\x02", b""]
    assert parts[0].content_type == "application/octet-stream"
    problems, parts = check_multipart(CONTENT_TYPE, multipart(b"x", preamble=b"ignored preamble"))
    assert (problems, [p.body for p in parts]) == ([], [b"x"])
    quoted = f'multipart/related; boundary="{BOUNDARY}"; type="application/octet-stream"'
    assert check_multipart(quoted, multipart(b"x"), part_type="application/octet-stream")[0] == []


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/octet-stream", b"x", "is not multipart/related"),
        ('multipart/related; type="application/octet-stream"', multipart(b"x"), "without a boundary"),
        (f"multipart/related; boundary={BOUNDARY}", multipart(b"x"), "mandatory type parameter"),
        (CONTENT_TYPE, multipart(b"x", boundary="other"), "never used as a delimiter"),
        (CONTENT_TYPE, multipart(b"x", close=False), "no close delimiter"),
        (CONTENT_TYPE, multipart(b"x", b"y").replace(b"\r\n\r\n", b"\n\n"), "no blank line"),
        (CONTENT_TYPE, multipart(b"x").replace(b"stream\r\n\r\n", b"stream\nX-A: b\r\n\r\n"), "not ended by CRLF"),
        (CONTENT_TYPE, multipart(b"x").replace(b"Content-Type: application/octet-stream\r\n", b""), "no Content-Type"),
        (CONTENT_TYPE, multipart(b"x").replace(b"application/octet-stream\r\n", b"image/jpeg\r\n"), "type parameter"),
        (CONTENT_TYPE, multipart(b"x" + f"--{BOUNDARY}".encode() + b"y"), "contains the boundary string"),
        (CONTENT_TYPE, multipart(b"x" + BOUNDARY.encode()), "contains the boundary string"),
        (CONTENT_TYPE, multipart(b"x").replace(f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY}X\r\n".encode()), "CRLF"),
        (CONTENT_TYPE.replace(BOUNDARY, "b" * 71), multipart(b"x", boundary="b" * 71), "1-70 bchars"),
        ("multipart/related; boundary=", b"", "malformed parameters"),
        ("multipart/related; type=application/dicom; boundary=x", b"", "malformed parameters"),
        (None, b"", "no Content-Type"),
    ],
)
def test_broken_multipart_is_caught(content_type: str | None, body: bytes, expected: str) -> None:
    problems, _ = check_multipart(content_type, body)
    assert any(expected in problem for problem in problems), problems


def test_part_type_is_checked() -> None:
    problems, _ = check_multipart(CONTENT_TYPE, multipart(b"x"), part_type="image/jphc")
    assert problems == ["part 1 is application/octet-stream, expected image/jphc"]


# --- media types ------------------------------------------------------------------------------------------


def test_parse_media_type() -> None:
    media = parse_media_type('Multipart/Related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1')
    assert media.essence == "multipart/related"
    assert media.params == {"type": "application/dicom", "transfer-syntax": "1.2.840.10008.1.2.1"}
    with pytest.raises(ValueError, match="not a media type"):
        parse_media_type("application")
    with pytest.raises(ValueError, match="malformed parameters"):
        parse_media_type("application/json; charset")
    with pytest.raises(ValueError, match="malformed parameters"):
        parse_media_type("multipart/related; type=application/dicom")
    assert parse_media_type("multipart/related; type=application/dicom", lenient=True).params["type"] == (
        "application/dicom"
    )
    assert [m.essence for m in parse_accept('multipart/related; type="a/b,c"; q=0.5, */*')] == [
        "multipart/related",
        "*/*",
    ]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/dicom+json", "application/dicom+json"),
        ("application/dicom+json, application/json;q=0.5", "application/json"),
        ("*/*", "image/jpeg"),
        ("image/*", "image/png"),
        ("", "application/dicom+json"),
        (
            'multipart/related; type="application/octet-stream"',
            'multipart/related; type="application/octet-stream"; boundary=x',
        ),
        ('multipart/related; type="image/*"', 'multipart/related; type="image/jphc"; boundary=x'),
        ("multipart/related", 'multipart/related; type="application/dicom"; boundary=x'),
        ("multipart/related; type=application/dicom", 'multipart/related; type="application/dicom"; boundary=x'),
    ],
)
def test_acceptable_answers(accept: str, content_type: str) -> None:
    assert check_negotiated(accept, content_type) == []


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/dicom+json", "application/json"),
        ("application/dicom+json;q=0", "application/dicom+json"),
        ("image/*", "application/dicom"),
        ('multipart/related; type="application/octet-stream"', 'multipart/related; type="image/jphc"; boundary=x'),
        ('multipart/related; type="application/octet-stream"', "multipart/related; boundary=x"),
        ("application/dicom", None),
        ("application/dicom", "not a type"),
    ],
)
def test_unacceptable_answers(accept: str, content_type: str | None) -> None:
    assert check_negotiated(accept, content_type) != []


# --- errors and headers -----------------------------------------------------------------------------------

ERROR_HEADERS = {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"}
ERROR_BODY = b'{"__type": "ResourceNotFoundException", "message": "Study 1.2 not found"}'


def test_good_error() -> None:
    assert check_error(404, ERROR_HEADERS, ERROR_BODY, 404) == []


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (500, ERROR_HEADERS, ERROR_BODY, "status 500, expected 404"),
        (404, {**ERROR_HEADERS, "Content-Type": "text/plain"}, ERROR_BODY, "must be application/json"),
        (404, ERROR_HEADERS, b"Not Found", "not JSON"),
        (404, ERROR_HEADERS, b"[]", "must be a JSON object"),
        (404, ERROR_HEADERS, b'{"message": "x"}', "no '__type'"),
        (404, ERROR_HEADERS, b'{"__type": "ResourceNotFoundException"}', "no 'message'"),
        (404, {"Content-Type": "application/json"}, ERROR_BODY, "x-amzn-ErrorType"),
        (
            404,
            {**ERROR_HEADERS, "x-amzn-ErrorType": "ValidationException"},
            ERROR_BODY.replace(b"ResourceNotFound", b"Validation"),
            "not an error code for status 404",
        ),
        (404, ERROR_HEADERS, ERROR_BODY.replace(b"Study", b"Traceback (most recent call last)"), "traceback"),
    ],
)
def test_broken_errors_are_caught(status: int, headers: dict[str, str], body: bytes, expected: str) -> None:
    problems = check_error(status, headers, body, 404)
    assert any(expected in problem for problem in problems), problems


def test_common_headers() -> None:
    cors = {
        "x-amzn-RequestId": "r",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "ETag, Content-Range, Content-Location, x-amzn-RequestId",
    }
    assert check_common_headers(cors, "http://a") == []
    assert check_common_headers({"x-amzn-RequestId": "r"}, None) == []
    assert check_common_headers({}, None) == ["no x-amzn-RequestId"]
    assert "does not allow" in check_common_headers({**cors, "Access-Control-Allow-Origin": "http://b"}, "http://a")[0]
    assert "not exposed" in check_common_headers({**cors, "Access-Control-Expose-Headers": "ETag"}, "http://a")[0]
    assert "does not allow" in check_common_headers({"x-amzn-RequestId": "r"}, "http://a")[0]
