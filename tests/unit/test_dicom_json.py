"""Document JSON -> PS3.18 F.2 DICOM JSON (openhi.dicom.dicom_json), checked against pydicom's own encoder."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from openhi.dicom.dicom_json import convert, instance_dicom_json
from openhi.dicom.json_values import dataset_to_json


def test_text_values_split_on_backslash_and_sorted_by_tag() -> None:
    out = convert({"Modality": "CT", "ImageType": "ORIGINAL\\PRIMARY\\AXIAL", "SOPClassUID": "1.2.3"})
    assert list(out) == ["00080008", "00080016", "00080060"]
    assert out["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]}


def test_person_name_component_groups() -> None:
    out = convert({"PatientName": "Yamada^Tarou=山田^太郎=やまだ^たろう"})
    expected = {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    assert out["00100010"]["Value"] == [expected]


def test_numbers_from_is_ds_and_binary_vrs() -> None:
    out = convert({"InstanceNumber": "7", "SliceThickness": "2.50", "Rows": 512, "PixelSpacing": "0.5\\0.5"})
    assert out["00200013"] == {"vr": "IS", "Value": [7]}
    assert out["00180050"] == {"vr": "DS", "Value": [2.5]}
    assert out["00280010"] == {"vr": "US", "Value": [512]}
    assert out["00280030"] == {"vr": "DS", "Value": [0.5, 0.5]}


def test_unparseable_ds_is_kept_as_text() -> None:
    assert convert({"SliceThickness": "abc"})["00180050"]["Value"] == ["abc"]


def test_empty_values_have_no_value_member() -> None:
    out = convert({"PatientBirthDate": None, "AccessionNumber": ""})
    assert out == {"00080050": {"vr": "SH"}, "00100030": {"vr": "DA"}}


def test_ambiguous_vr_takes_ss_for_negative_numbers() -> None:
    assert convert({"SmallestImagePixelValue": -20})["00280106"]["vr"] == "SS"
    assert convert({"SmallestImagePixelValue": 20})["00280106"]["vr"] == "US"


def test_private_elements_take_their_vr_from_dicomvrs() -> None:
    out = convert({"00091001": "1.5", "00090010": "ACME"}, vrs={"00091001": "DS"})
    assert out["00091001"] == {"vr": "DS", "Value": [1.5]}
    assert out["00090010"] == {"vr": "LO", "Value": ["ACME"]}


def test_sequences_recurse_with_dotted_vr_paths() -> None:
    doc = {"ReferencedImageSequence": [{"ReferencedSOPInstanceUID": "1.2", "00091010": "7"}]}
    out = convert(doc, vrs={"00081140.00091010": "IS"})
    assert out["00081140"]["Value"] == [
        {"00081155": {"vr": "UI", "Value": ["1.2"]}, "00091010": {"vr": "IS", "Value": [7]}}
    ]


def test_bytes_inline_and_bulk_references_become_uris() -> None:
    out = convert(
        {"00091002": "AAEC", "EncapsulatedDocument": {"BulkDataReference": "abc"}},
        vrs={"00091002": "OB"},
        bulk_uri=lambda ref: f"http://host/bulkdata/{ref}",
    )
    assert out["00091002"] == {"vr": "OB", "InlineBinary": "AAEC"}
    assert out["00420011"] == {"vr": "OB", "BulkDataURI": "http://host/bulkdata/abc"}


def test_at_values_are_hex_strings() -> None:
    assert convert({"FrameIncrementPointer": 0x00181063})["00280009"] == {"vr": "AT", "Value": ["00181063"]}


def test_instance_json_merges_every_level() -> None:
    document: dict[str, Any] = {
        "Patient": {"DICOM": {"PatientID": "P1"}},
        "Study": {
            "DICOM": {"StudyInstanceUID": "1.1"},
            "Series": {"1.1.1": {"DICOM": {"Modality": "MR"}, "Instances": {"1.1.1.1": {"DICOM": {"Rows": 2}}}}},
        },
    }
    out = instance_dicom_json(document, "1.1.1", "1.1.1.1")
    assert set(out) == {"00100020", "0020000D", "00080060", "00280010"}


_texts = st.text(alphabet="ABCXYZ019 ^-", min_size=1, max_size=12).map(str.strip).filter(bool)


@given(
    name=_texts,
    patient_id=_texts,
    rows=st.integers(min_value=0, max_value=65535),
    thickness=st.decimals(min_value=0, max_value=1000, places=2).map(str),
)
def test_matches_pydicom_json_model(name: str, patient_id: str, rows: int, thickness: str) -> None:
    """Ours equals pydicom's ``to_json_dict`` for the same dataset (the reference F.2 encoder)."""
    ds = Dataset()
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.Rows = rows
    ds.SliceThickness = thickness
    document_values, vrs = dataset_to_json(ds)
    ours = convert(document_values, vrs=vrs)
    theirs = ds.to_json_dict()
    assert _normalized(ours) == _normalized(theirs)


def _normalized(obj: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, attr in obj.items():
        values = attr.get("Value")
        if values is not None:
            values = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in values]
        out[key] = {"vr": attr["vr"], **({"Value": values} if values is not None else {})}
    return out
