"""Properties: generated datasets of text elements normalize without surprises and their values round-trip."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom._dicom_dict import DicomDictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from openhi.dicom.errors import DicomInputError
from openhi.dicom.json_values import (
    element_key,
    json_to_dataset,
    json_to_element_value,
    make_element,
    value_to_json,
)
from openhi.dicom.levels import level_of
from openhi.dicom.normalize import IMPORT_LENGTH_LIMITS, VR_MAX_LENGTH, normalize

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom validates DA/TM/CS contents

EXCLUDED = {
    0x00080005,  # SpecificCharacterSet: a random value would change the decoding of everything else
    0x00080016,
    0x00080018,
    0x0020000D,
    0x0020000E,  # the required UIDs are set by the test
    0x00201206,
    0x00201208,  # NumberOfStudyRelated*: limited to 1000000 by the import
}
TEXT_VRS = (
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
)
MULTI_VALUED_VRS = frozenset(TEXT_VRS) - {"LT", "ST", "UT", "UR"}


def _tags_by_vr() -> dict[str, list[int]]:
    tags: dict[str, list[int]] = {vr: [] for vr in TEXT_VRS}
    for tag, (vr, vm, _name, retired, keyword) in DicomDictionary.items():
        usable = vr in tags and keyword and not retired and vm in ("1", "1-n")
        if usable and tag >> 16 not in (0x0000, 0x0002) and tag not in EXCLUDED:
            tags[vr].append(tag)
    return {vr: sorted(found)[:60] for vr, found in tags.items()}


TAGS_BY_VR = _tags_by_vr()
PRINTABLE = string.ascii_letters + string.digits + " .-_^=+/:;,()'"
UID = st.from_regex(r"(0|[1-9][0-9]{0,5})(\.(0|[1-9][0-9]{0,5})){1,8}", fullmatch=True)


def _one_value(vr: str) -> st.SearchStrategy[str]:
    if vr == "UI":
        return UID
    if vr == "DS":
        return st.from_regex(r"-?[0-9]{1,7}(\.[0-9]{1,6})?", fullmatch=True)
    if vr == "IS":
        return st.from_regex(r"-?[1-9][0-9]{0,8}", fullmatch=True)
    alphabet = PRINTABLE + "\\" if vr not in MULTI_VALUED_VRS else PRINTABLE
    limit = VR_MAX_LENGTH.get(vr, 300)
    if vr == "PN":
        alphabet = alphabet.replace("=", "")
    return st.text(alphabet=alphabet, min_size=1, max_size=limit).filter(lambda text: text.strip() == text)


@st.composite
def text_elements(draw: st.DrawFn) -> list[tuple[int, str, str]]:
    chosen: dict[int, tuple[str, str]] = {}
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        vr = draw(st.sampled_from([vr for vr in TEXT_VRS if TAGS_BY_VR[vr]]))
        tag = draw(st.sampled_from(TAGS_BY_VR[vr]))
        # the import limits of guide 22620-22643 measure the whole value: keep those elements single-valued
        multi = vr in MULTI_VALUED_VRS and element_key(tag) not in IMPORT_LENGTH_LIMITS
        count = draw(st.integers(min_value=1, max_value=3)) if multi else 1
        values = [draw(_one_value(vr)) for _ in range(count)]
        chosen[tag] = (vr, "\\".join(values))
    return [(tag, vr, value) for tag, (vr, value) in chosen.items()]


def _dataset(elements: list[tuple[int, str, str]]) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.6"
    for tag, vr, value in elements:
        ds.add(make_element(tag, vr, value))
    return ds


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_elements())
def test_normalize_generated_text_datasets(elements: list[tuple[int, str, str]]) -> None:
    ds = _dataset(elements)
    try:
        ni = normalize(ds)
    except DicomInputError as exc:  # the only failure normalize may report
        pytest.fail(f"valid dataset refused: {exc}")
    assert ni.warnings == []  # values within their VR limits, valid UIDs
    objects: dict[str, dict[str, Any]] = {
        "Patient": ni.patient,
        "Study": ni.study,
        "Series": ni.series,
        "Instance": ni.instance,
    }
    for tag, vr, value in elements:
        placed = objects[level_of(tag).value]
        assert placed[element_key(tag)] == value
        assert value_to_json(vr, json_to_element_value(vr, value)) == value
    rebuilt = json_to_dataset(ni.instance, vrs=ni.instance_vrs)
    assert normalize(_dataset([(tag, vr, value) for tag, vr, value in elements])).instance == ni.instance
    assert all(elem.tag in ds for elem in rebuilt)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(TEXT_VRS),
    st.text(alphabet=string.printable, max_size=80),
)
def test_normalize_never_raises_unexpectedly_on_arbitrary_text(vr: str, text: str) -> None:
    """Arbitrary (possibly invalid) text: normalize keeps the file or refuses it with DicomInputError."""
    tag = TAGS_BY_VR[vr][0]
    try:
        ds = _dataset([(tag, vr, text)])
    except (ValueError, OverflowError):
        return  # pydicom itself refuses to hold the value (e.g. a DS that is not a number)
    try:
        ni = normalize(ds)
    except DicomInputError:
        return
    encoded = {**ni.patient, **ni.study, **ni.series, **ni.instance}[element_key(tag)]
    assert value_to_json(vr, json_to_element_value(vr, encoded)) == encoded
