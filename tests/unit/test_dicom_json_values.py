"""Element values <-> metadata JSON (guide 4330-4395), round-tripped over every bundled pydicom test file."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.data import get_testdata_files
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from openhi.dicom.errors import DicomInputError
from openhi.dicom.json_values import (
    DatasetEncoder,
    JsonValue,
    Path,
    dataset_to_json,
    element_key,
    json_to_dataset,
    json_to_element_value,
    key_to_tag,
    make_element,
    value_to_json,
)
from openhi.dicom.reader import read_p10

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _readable_test_files() -> list[str]:
    paths = []
    with warnings.catch_warnings():  # pydicom's notes on odd files, at collection time
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files()):
            if os.path.isdir(path):
                continue
            try:
                read_p10(path)
            except DicomInputError:
                continue
            paths.append(path)
    return paths


TEST_FILES = _readable_test_files()


class _NoTopLevelPixelData(DatasetEncoder):
    def skip(self, tag: int, path: Path) -> bool:
        return super().skip(tag, path) or (not path and int(tag) >> 16 == 0x7FE0)


def _elements(ds: Dataset, top: bool = True) -> Iterator[DataElement]:
    for tag in sorted(ds.keys()):
        if top and int(tag) >> 16 == 0x7FE0:
            continue  # pixel data: stored apart as frames
        elem = ds[tag]
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _elements(item, top=False)


def test_bundled_files_found() -> None:
    names = {os.path.basename(path) for path in TEST_FILES}
    assert {"CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "waveform_ecg.dcm"} <= names
    assert len(TEST_FILES) > 100


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: os.path.relpath(path, os.path.dirname(path)))
def test_round_trip_every_element_of_bundled_file(path: str) -> None:
    ds = read_p10(path)
    for elem in _elements(ds):
        vr = str(elem.VR)
        if vr == "SQ":
            continue
        encoded = value_to_json(vr, elem.value)
        json.dumps(encoded, allow_nan=False)
        decoded = json_to_element_value(vr, encoded)
        assert value_to_json(vr, decoded) == encoded, elem
        rebuilt = make_element(elem.tag, vr, decoded)
        assert value_to_json(vr, rebuilt.value) == encoded, elem
    # and whole datasets, sequences and DICOMVRs included
    encoder = _NoTopLevelPixelData()
    obj = encoder.encode_dataset(ds)
    again = _NoTopLevelPixelData()
    assert again.encode_dataset(json_to_dataset(obj, vrs=encoder.vrs)) == obj
    assert again.vrs == encoder.vrs


def test_the_bundled_files_cover_the_vrs() -> None:
    """The per-file round trips above exercise every VR these files hold; check which ones that is."""
    seen = {str(elem.VR) for path in TEST_FILES for elem in _elements(read_p10(path))}
    assert seen >= {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OF", "OW"}
    assert seen >= {"PN", "SH", "SL", "SQ", "SS", "ST", "TM", "UI", "UL", "UN", "US", "UT"}


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("LO", "2178309", "2178309"),
        ("PN", "MISTER^CT", "MISTER^CT"),
        ("DS", "40", "40"),
        ("DS", "1.50", "1.50"),
        ("DS", ["0.5", "0.50"], "0.5\\0.50"),
        ("IS", "012", "012"),
        ("CS", ["ORIGINAL", "", "AXIAL"], "ORIGINAL\\\\AXIAL"),
        ("LT", "a\\b", "a\\b"),
        ("DA", "", None),
        ("PN", "", None),
        ("US", 15, 15),
        ("US", [1, 2, 3], [1, 2, 3]),
        ("SS", -5, -5),
        ("UL", 4294967295, 4294967295),
        ("SV", -(2**63), -(2**63)),
        ("UV", 2**64 - 1, 2**64 - 1),
        ("FD", 0.1, 0.1),
        ("FL", math.nan, "NaN"),
        ("FD", [math.inf, -math.inf, 1.5], ["Infinity", "-Infinity", 1.5]),
        ("AT", 0x00100010, 0x00100010),
        ("AT", [0x00100010, 0x00100020], [0x00100010, 0x00100020]),
        ("OB", b"\x00\x01\x02", "AAEC"),
        ("UN", b"Nested SQ", "TmVzdGVkIFNR"),
        ("OB or OW", b"\x01\x00", "AQA="),
        ("US or SS", 7, 7),
        ("US", None, None),
        ("OB", b"", None),
    ],
)
def test_value_formats(vr: str, value: Any, expected: JsonValue) -> None:
    elem = DataElement(0x00091001, vr, value)
    encoded = value_to_json(vr, elem.value)
    assert encoded == expected
    assert value_to_json(vr, json_to_element_value(vr, encoded)) == expected


def test_invalid_number_strings_are_kept_as_text() -> None:
    elem = make_element(0x00280008, "IS", "1A")
    assert value_to_json("IS", elem.value) == "1A"
    elem = make_element(0x00280030, "DS", "1\\x")
    assert value_to_json("DS", elem.value) == "1\\x"


def test_sequences_nest_and_private_vrs_are_collected() -> None:
    inner = Dataset()
    inner.add_new(0x00191010, "DS", "97")
    inner.ReferencedSOPInstanceUID = "1.2.3"
    item = Dataset()
    item.add_new(0x00190010, "LO", "ACME")
    item.add_new(0x00191001, "SQ", Sequence([inner]))
    ds = Dataset()
    ds.ReferencedStudySequence = Sequence([item, Dataset()])
    ds.add_new(0x001910F9, "DS", "97")
    ds.add_new(0x60003000, "OW", b"\x00\x01")
    obj, vrs = dataset_to_json(ds)
    assert obj == {
        "ReferencedStudySequence": [
            {"00190010": "ACME", "00191001": [{"ReferencedSOPInstanceUID": "1.2.3", "00191010": "97"}]},
            {},
        ],
        "001910F9": "97",
        "60003000": "AAE=",
    }
    assert vrs == {
        "00081110.00190010": "LO",
        "00081110.00191001": "SQ",
        "00081110.00191001.00191010": "DS",
        "001910F9": "DS",
        "60003000": "OW",
    }
    assert dataset_to_json(json_to_dataset(obj, vrs=vrs)) == (obj, vrs)


def test_guide_private_update_example_decodes() -> None:
    # guide 7100-7130: {"DICOM": {"001910F9": "97"}, "DICOMVRs": {"001910F9": "DS"}}
    ds = json_to_dataset({"001910F9": "97"}, vrs={"001910F9": "DS"})
    assert ds[0x001910F9].VR == "DS"
    assert float(ds[0x001910F9].value) == 97.0


def test_keys() -> None:
    assert element_key(0x00100010) == "PatientName"
    assert element_key(0x001910F9) == "001910F9"
    assert element_key(0x60003000) == "60003000"  # repeating group: the keyword would not be unique
    assert element_key(0x00990000 | 0x1234) == "00991234"
    assert key_to_tag("PatientName") == 0x00100010
    assert key_to_tag("001910f9") == 0x001910F9
    with pytest.raises(ValueError, match="neither a DICOM keyword"):
        key_to_tag("NoSuchKeyword")


def test_bulk_references_resolve_through_the_callback() -> None:
    reference: JsonValue = {"BulkDataReference": "ab" * 16}
    assert json_to_element_value("OB", reference, resolve_bulk=lambda ref: b"\x01\x02") == b"\x01\x02"
    with pytest.raises(ValueError, match="cannot be resolved"):
        json_to_element_value("OB", reference)


@pytest.mark.parametrize(
    ("vr", "value"),
    [("US", "abc"), ("US", 1.5), ("LO", 5), ("OB", "not base64!"), ("SQ", "x"), ("SQ", [1]), ("FD", True)],
)
def test_values_that_do_not_fit_the_vr_are_refused(vr: str, value: JsonValue) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the VR
        json_to_element_value(vr, value)


def test_unknown_vr_needs_dicomvrs() -> None:
    with pytest.raises(ValueError, match="give it in DICOMVRs"):
        json_to_dataset({"00191001": "x"})
