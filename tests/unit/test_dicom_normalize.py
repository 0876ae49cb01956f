"""normalize(): levels, values, DICOMVRs, required attributes, warnings and bulk values."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_files
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from openhi.dicom.errors import DicomInputError
from openhi.dicom.json_values import json_to_element_value
from openhi.dicom.levels import Level, level_of_keyword
from openhi.dicom.normalize import GroupingKey, NormalizedInstance, normalize
from openhi.dicom.reader import read_p10
from openhi.errors import OpenHIError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's validation of odd test values

BUNDLED = {os.path.basename(path): path for path in get_testdata_files()}


def bundled(name: str) -> str:
    assert name in BUNDLED, f"{name} is not among pydicom's bundled test files"
    return BUNDLED[name]


def minimal(**elements: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def assert_well_formed(ni: NormalizedInstance) -> None:
    for level, obj in ((Level.PATIENT, ni.patient), (Level.STUDY, ni.study), (Level.SERIES, ni.series)):
        assert all(level_of_keyword(key) is level for key in obj), level
    assert all(level_of_keyword(key) is Level.INSTANCE for key in ni.instance)
    json.dumps([ni.patient, ni.study, ni.series, ni.instance, ni.instance_vrs], allow_nan=False)


def test_ct_small() -> None:
    ni = normalize(read_p10(bundled("CT_small.dcm")))
    assert_well_formed(ni)
    assert ni.patient == {
        "PatientName": "CompressedSamples^CT1",
        "PatientID": "1CT1",
        "PatientBirthDate": None,
        "PatientSex": "O",
        "OtherPatientIDsSequence": [
            {"PatientID": "ABCD1234", "TypeOfPatientID": "TEXT"},
            {"PatientID": "1234ABCD", "TypeOfPatientID": "TEXT"},
        ],
    }
    assert ni.study["StudyDate"] == "20040119"
    assert ni.study["StudyTime"] == "072730"
    assert ni.study["AccessionNumber"] is None
    assert ni.study["PatientWeight"] == "0.000000"  # Patient Study module: Study level, DS text kept
    assert ni.series["Modality"] == "CT"
    assert ni.series["SeriesNumber"] == "1"
    assert ni.series["FrameOfReferenceUID"] == "1.3.6.1.4.1.5962.1.4.1.1.20040119072730.12322"
    assert ni.series["PatientPosition"] == "FFS"
    instance = ni.instance
    assert instance["SOPInstanceUID"] == ni.sop_instance_uid == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert instance["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2"
    assert instance["HighBit"] == 15
    assert type(instance["HighBit"]) is int
    assert instance["Exposure"] == "170"
    assert instance["ImageType"] == "ORIGINAL\\PRIMARY\\AXIAL"
    assert instance["ImagePositionPatient"] == "-158.135803\\-179.035797\\-75.699997"
    assert instance["PixelData"] is None
    assert "TransferSyntaxUID" not in instance
    assert "FileMetaInformationGroupLength" not in instance
    # private elements: 8 hex digits, VR in DICOMVRs, Instance level
    assert instance["00090010"] == "GEMS_IDEN_01"
    assert instance["00191003"] == "373.750000"
    assert instance["00091027"] == 862399669
    assert ni.instance_vrs["00090010"] == "LO"
    assert ni.instance_vrs["00191003"] == "DS"
    assert ni.instance_vrs["00091027"] == "SL"
    private_keys = {key for key in instance if key[:4].isdigit() and int(key[:4], 16) % 2 == 1}
    assert private_keys
    assert private_keys <= set(ni.instance_vrs)
    assert ni.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert ni.warnings == []
    assert "WarningReason" not in instance
    assert ni.grouping == GroupingKey(
        study_date="20040119",
        accession_number=None,
        patient_id="1CT1",
        study_instance_uid="1.3.6.1.4.1.5962.1.2.1.20040119072730.12322",
        study_id="1CT1",
        series_instance_uid="1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322",
        series_number="1",
    )


def test_mr_small() -> None:
    ni = normalize(read_p10(bundled("MR_small.dcm")))
    assert_well_formed(ni)
    assert ni.patient["PatientName"] == "CompressedSamples^MR1"
    assert ni.study["StudyDate"] == "20040826"
    assert ni.study["PatientWeight"] == "80.0000"
    assert ni.series["Modality"] == "MR"
    assert ni.series["Manufacturer"] == "TOSHIBA_MEC"  # General Equipment module: Series level
    assert ni.instance["PixelSpacing"] == "0.3125\\0.3125"
    assert ni.instance["SmallestImagePixelValue"] == 0
    assert ni.instance["LargestImagePixelValue"] == 4000
    assert ni.instance["PixelData"] is None
    assert ni.instance_vrs == {}
    assert ni.grouping.series_number == "1"
    assert ni.grouping.study_id == "4MR1"


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"])
def test_same_metadata_whatever_the_transfer_syntax(name: str) -> None:
    reference = normalize(read_p10(bundled("MR_small.dcm")))
    other = normalize(read_p10(bundled(name)))
    assert (other.patient, other.study, other.series) == (
        reference.patient,
        reference.study,
        reference.series,
    )
    assert other.transfer_syntax_uid != reference.transfer_syntax_uid


def test_nested_private_sequences() -> None:
    ds = read_p10(bundled("nested_priv_SQ.dcm"))
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.2", "1.2.3.3"
    ni = normalize(ds)
    b64 = base64.b64encode
    assert ni.instance["00010001"] == [
        {
            "00010001": [{"00010001": b64(b"Double Nested SQ").decode()}],
            "00010002": b64(b"Nested SQ").decode(),
        }
    ]
    assert ni.instance_vrs == {
        "00010001": "SQ",
        "00010001.00010001": "SQ",
        "00010001.00010001.00010001": "UN",
        "00010001.00010002": "UN",
    }
    assert ni.instance["PixelData"] is None


def test_private_sequence_holding_public_elements_stays_in_the_instance() -> None:
    ds = read_p10(bundled("UN_sequence.dcm"))
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.2", "1.2.3.3"
    ni = normalize(ds)
    instance: Any = ni.instance
    item = instance["4453100C"][0]
    assert item["StudyInstanceUID"] == "1.2.840.113619.2.327.3.185221411.476.1398588725.795"
    referenced = item["ReferencedSeriesSequence"][0]["ReferencedSOPSequence"][0]
    assert referenced["ReferencedSOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2"
    assert ni.instance_vrs == {"4453100C": "SQ"}
    assert ni.study["StudyInstanceUID"] == "1.2.3.2"


def test_public_sequence_at_study_level_with_private_items() -> None:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.3"
    item.add_new(0x00290010, "LO", "ACME")
    item.add_new(0x00291001, "DS", "97")
    ds = minimal(ReferencedStudySequence=Sequence([item]))
    ni = normalize(ds)
    assert ni.study["ReferencedStudySequence"] == [
        {"ReferencedSOPClassUID": "1.2.3", "00290010": "ACME", "00291001": "97"}
    ]
    assert ni.instance_vrs == {"00081110.00290010": "LO", "00081110.00291001": "DS"}
    assert "ReferencedStudySequence" not in ni.instance


def test_left_out_elements() -> None:
    ds = minimal()
    ds.add_new(0x00080000, "UL", 100)  # group length
    ds.add_new(0x00020016, "AE", "MISPLACED")  # file meta in the data set
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 8)  # trailing padding
    ds.file_meta.SourceApplicationEntityTitle = "SCANNER"
    ni = normalize(ds)
    assert set(ni.instance) == {"SOPClassUID", "SOPInstanceUID"}
    assert ni.instance_vrs == {}


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_missing_required_attribute(keyword: str) -> None:
    ds = minimal()
    delattr(ds, keyword)
    with pytest.raises(DicomInputError, match=f"^DICOM attribute {keyword} does not exist$") as caught:
        normalize(ds)
    assert caught.value.code == "ValidationException"
    assert isinstance(caught.value, OpenHIError)


def test_empty_or_multiple_required_values() -> None:
    with pytest.raises(DicomInputError, match="DICOM attribute SOPInstanceUID does not exist"):
        normalize(minimal(SOPInstanceUID=""))
    with pytest.raises(DicomInputError, match="DICOM attribute SeriesInstanceUID has more than one value"):
        normalize(minimal(SeriesInstanceUID=["1.2.3", "1.2.4"]))


def test_missing_transfer_syntax() -> None:
    ds = minimal()
    del ds.file_meta.TransferSyntaxUID
    with pytest.raises(DicomInputError, match=r"^DICOM attribute TransferSyntaxUID does not exist$"):
        normalize(ds)
    with pytest.raises(DicomInputError, match=r"^DICOM attribute TransferSyntaxUID does not exist$"):
        normalize(read_p10(bundled("meta_missing_tsyntax.dcm")))


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_uid_over_the_import_limit_fails(keyword: str) -> None:
    uid = "1." + ".".join(["123456789"] * 26)  # 261 characters
    with pytest.raises(DicomInputError, match=f"{keyword} is 261 characters long; the limit is 256"):
        normalize(minimal(**{keyword: uid}))


def test_length_warnings() -> None:
    long_uid = "1." + ".".join(["123456789"] * 10)  # 101 characters: over UI's 64, under the import's 256
    ds = minimal(
        PatientName="A" * 300,  # guide limit 256 and PN's 64
        PatientID="B" * 100,  # LO allows 64
        StudyDate="2001010112",  # DA allows 8
        NumberOfStudyRelatedInstances="2000000",  # guide limit 1000000
        StudyInstanceUID=long_uid,
        Manufacturer="ok",
    )
    ni = normalize(ds)
    messages = {warning.message.split(" (")[0]: warning for warning in ni.warnings}
    assert set(messages) == {
        "PatientName",
        "PatientID",
        "StudyDate",
        "NumberOfStudyRelatedInstances",
        "StudyInstanceUID",
    }
    assert {(warning.code, warning.type) for warning in ni.warnings} == {(45571, "INVALID_DICOM_VALUE_LENGTH")}
    assert "300 characters long where the import allows 256" in messages["PatientName"].message
    assert "VR PN allows 64" in messages["PatientName"].message
    assert "VR LO allows 64" in messages["PatientID"].message
    assert "2000000 is above the import limit of 1000000" in messages["NumberOfStudyRelatedInstances"].message
    assert ni.patient["PatientName"] == "A" * 300  # the file is kept as it is
    assert ni.study_instance_uid == long_uid
    assert ni.instance["WarningReason"] == [45571]


@pytest.mark.parametrize("uid", ["1.2.3..4", "1.02.3", "1.2.a", "1.2.3.", ".1.2", "1.2 .3"])
def test_uid_format_warnings(uid: str) -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = uid
    ni = normalize(minimal(FrameOfReferenceUID=uid, ReferencedImageSequence=Sequence([item])))
    assert [(warning.code, warning.type) for warning in ni.warnings] == [(45570, "INVALID_UID_FORMAT")] * 2
    assert ni.warnings[0].message.startswith("ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)")
    assert ni.warnings[1].message.startswith("FrameOfReferenceUID (0020,0052)")
    assert ni.series["FrameOfReferenceUID"] == uid
    assert ni.instance["WarningReason"] == [45570]


def test_valid_uids_do_not_warn() -> None:
    ni = normalize(minimal(FrameOfReferenceUID="0.0.10.2", ReferencedSOPInstanceUID=generate_uid()))
    assert ni.warnings == []


def test_existing_warning_reason_is_merged() -> None:
    ds = minimal(FrameOfReferenceUID="1..2")
    ds.add_new(0x00081196, "US", 45056)
    assert normalize(ds).instance["WarningReason"] == [45056, 45570]


def test_undecodable_value_is_kept_as_un_with_a_coercion_warning() -> None:
    ds = minimal()
    ds[0x00280010] = RawDataElement(Tag(0x00280010), "US", 3, b"\x01\x02\x03", 0, False, True)
    ni = normalize(ds)
    assert ni.instance["Rows"] == base64.b64encode(b"\x01\x02\x03").decode()
    assert ni.instance_vrs == {"00280010": "UN"}
    assert [(warning.code, warning.type) for warning in ni.warnings] == [(45056, "COERCION_OF_DATA_ELEMENTS")]
    assert ni.warnings[0].message.startswith("Rows (0028,0010)")


def test_bulk_values_over_the_threshold_are_set_apart() -> None:
    item = Dataset()
    item.add_new(0x00091001, "OB", b"\x07" * 3000)
    item.add_new(0x00090010, "LO", "ACME")
    ds = minimal(ReferencedStudySequence=Sequence([item]))
    ds.add_new(0x60003000, "OW", b"\x01\x02" * 1000)  # overlay data, 2000 bytes
    ds.add_new(0x00420011, "OB", b"\x05" * 1000)  # EncapsulatedDocument, exactly the threshold
    ds.PixelData = b"\x00" * 5000
    ni = normalize(ds, bulk_threshold=1000)
    assert [(value.path, value.vr, value.level, len(value.data)) for value in ni.bulk_values] == [
        ((0x00081110, 0, 0x00091001), "OB", Level.STUDY, 3000),
        ((0x60003000,), "OW", Level.INSTANCE, 2000),
    ]
    nested, overlay = ni.bulk_values
    assert ni.study["ReferencedStudySequence"] == [
        {"00090010": "ACME", "00091001": {"BulkDataReference": nested.reference_id}}
    ]
    assert ni.instance["60003000"] == {"BulkDataReference": overlay.reference_id}
    assert ni.instance["EncapsulatedDocument"] == base64.b64encode(b"\x05" * 1000).decode()
    assert ni.instance["PixelData"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", overlay.reference_id)
    assert overlay.vr_key == "60003000"
    assert nested.vr_key == "00081110.00091001"
    # the ids are stable across imports, and resolve back to the bytes
    again = normalize(ds, bulk_threshold=1000)
    assert [value.reference_id for value in again.bulk_values] == [nested.reference_id, overlay.reference_id]
    store = {value.reference_id: value.data for value in ni.bulk_values}
    value = json_to_element_value("OW", ni.instance["60003000"], resolve_bulk=store.__getitem__)
    assert value == b"\x01\x02" * 1000
    # the default threshold (1 MB) keeps these inline
    assert normalize(ds).bulk_values == []


def test_deferred_pixel_data_is_not_read(tmp_path: Path) -> None:
    ds = minimal(Rows=1024, Columns=1024, BitsAllocated=16, BitsStored=16, HighBit=15, PixelRepresentation=0)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = b"\x00\x01" * (1024 * 1024)  # 2 MB: deferred by the reader
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    loaded = read_p10(path)
    ni = normalize(loaded)
    assert ni.instance["PixelData"] is None
    raw = loaded.get_item(0x7FE00010, keep_deferred=True)
    assert isinstance(raw, RawDataElement)
    assert raw.value is None  # still on disk
