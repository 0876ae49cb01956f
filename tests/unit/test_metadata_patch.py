"""UpdateImageSetMetadata patches (guide 6922-7873 examples 1-7, constraints 22644-22656 and 6936-6943)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhi.dicom.normalize import GroupingKey
from openhi.errors import ValidationError
from openhi.imagesets import document
from openhi.imagesets.patch import MAX_PATCH_BYTES, PatchResult, apply_updates, parse_patch
from openhi.imagesets.staged import StagedInstance

DATASTORE, IMAGE_SET = "1" * 32, "e" * 32
STUDY_UID = "1.2.840.113619.2.30.1.1762295590.1623.978668949.886"
GUIDE_UID = "1.1.1.1.1.1.1.1.12345.123456789012.123.12345678901234.1"  # guide 7034-7070: series and SOP UID alike
SOP_A2 = "1.1.1.1.1.1.1.1.12345.123456789012.123.12345678901234.2"
SERIES_B = "1.3.6.1.4.1.5962.99.1.3633258862.2104868982.1369432891697.3656.0"  # guide 7181-7215
SOP_B1 = "1.3.6.1.4.1.5962.99.1.3633258862.2104868982.1369432891697.3659.0"
SOP_B1_NEW = "1.3.6.1.4.1.5962.99.1.3633258862.2104868982.1369432891697.3659.9"
SOP_B2 = "1.3.6.1.4.1.5962.99.1.3633258862.2104868982.1369432891697.3660.0"
A1 = f"Study.Series[{GUIDE_UID}].Instances[{GUIDE_UID}]"


def frame_id(sop: str, index: int) -> str:
    return hashlib.sha256(f"{sop}/{index}".encode()).hexdigest()[:32]


def staged(series: str, sop: str, frames: int, extra: dict[str, Any], vrs: dict[str, str]) -> StagedInstance:
    key = GroupingKey("20240501", "A1", "2178309", STUDY_UID, "1", series, "1")
    return StagedInstance(
        input_key=f"{sop}.dcm",
        sop_instance_uid=sop,
        grouping=key,
        patient={"PatientBirthDate": None, "PatientSex": None, "PatientID": "2178309", "PatientName": "MISTER^CT"},
        study={
            "StudyInstanceUID": STUDY_UID,
            "StudyDate": "20240501",
            "StudyTime": "083501",
            "StudyID": "1",
            "AccessionNumber": "A1",
            "StudyDescription": "CHEST",
            "PatientAge": "045Y",
            "PatientWeight": None,
            "ReferencedStudySequence": [
                {"ReferencedSOPClassUID": "1.2.840.10008.3.1.2.3.1", "ReferencedSOPInstanceUID": "1.2.3"},
                {"ReferencedSOPClassUID": "1.2.840.10008.3.1.2.3.1", "ReferencedSOPInstanceUID": "1.2.4"},
            ],
        },
        series={"SeriesInstanceUID": series, "Modality": "CT", "SeriesNumber": "1", "PatientPosition": "FFS"},
        instance={
            "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "SOPInstanceUID": sop,
            "ImageType": "ORIGINAL\\PRIMARY\\AXIAL",
            "HighBit": 15,
            "Exposure": "40",
            "RescaleSlope": "1",
            "PixelData": None,
            **extra,
        },
        instance_vrs=vrs,
        stored_transfer_syntax="1.2.840.10008.1.2.4.202",
        image_frames=[{"ID": frame_id(sop, i), "FrameSizeInBytes": 384000} for i in range(frames)],
        stored_frame_sizes=[384000] * frames,
    )


def build_document() -> dict[str, Any]:
    private = {"00090010": "GEMS_IDEN_01", "00091001": "GE_GENESIS_FF"}
    return document.merge(
        document.empty_document(DATASTORE, IMAGE_SET),
        [
            staged(GUIDE_UID, GUIDE_UID, 2, private, {"00090010": "LO", "00091001": "LO"}),
            staged(GUIDE_UID, SOP_A2, 1, {}, {}),
            staged(SERIES_B, SOP_B1, 3, {}, {}),
            staged(SERIES_B, SOP_B2, 1, {}, {}),
        ],
    )


DOC = build_document()


def patch(**levels: Any) -> dict[str, Any]:
    return {"SchemaVersion": 1.1, **levels}


def instance_patch(series: str, sop: str, body: dict[str, Any]) -> dict[str, Any]:
    return patch(Study={"Series": {series: {"Instances": {sop: body}}}})


def run(
    updatable: dict[str, Any] | None = None,
    removable: dict[str, Any] | None = None,
    *,
    force: bool = False,
    is_primary: bool = False,
    doc: dict[str, Any] | None = None,
) -> PatchResult:
    """apply_updates, checking that the input document is never modified (whatever the outcome)."""
    source = DOC if doc is None else doc
    before = copy.deepcopy(source)
    try:
        return apply_updates(source, updatable, removable, force=force, is_primary=is_primary)
    finally:
        assert source == before


def refused(
    updatable: dict[str, Any] | None = None,
    removable: dict[str, Any] | None = None,
    *,
    force: bool = False,
    is_primary: bool = False,
    match: str = "",
    field: str | None = None,
) -> ValidationError:
    with pytest.raises(ValidationError, match=match) as caught:
        run(updatable, removable, force=force, is_primary=is_primary)
    expected = field or ("updatableAttributes" if removable is None else "removableAttributes")
    assert caught.value.field == expected
    assert caught.value.message.startswith(f"{expected}: ")
    return caught.value


def instance(result: PatchResult, series: str = GUIDE_UID, sop: str = GUIDE_UID) -> dict[str, Any]:
    entry: dict[str, Any] = result.document["Study"]["Series"][series]["Instances"][sop]
    return entry


def without(doc: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """``doc`` minus the listed paths, to compare everything else."""
    out = copy.deepcopy(doc)
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return out


# -- parse_patch ------------------------------------------------------------------------------------------


def test_parse_patch_reads_the_guide_example_1() -> None:
    data = b'{"SchemaVersion":1.1,"Patient":{"DICOM":{"PatientName":"MX^MX"}}}'
    assert parse_patch(data, "updatableAttributes") == patch(Patient={"DICOM": {"PatientName": "MX^MX"}})


def test_parse_patch_accepts_the_schema_version_as_text() -> None:
    assert parse_patch(b'{"SchemaVersion": "1.1"}', "removableAttributes") == {"SchemaVersion": "1.1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"{not json", "not a valid JSON"),
        (b'{"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "\xff"}}}', "not a valid JSON"),
        (b'{"SchemaVersion": 1.1, "Study": {"DICOM": {"PatientWeight": NaN}}}', "not a valid JSON"),
        (b"[1.1]", "must be a JSON object"),
        (b'"1.1"', "must be a JSON object"),
        (b'{"Patient": {"DICOM": {}}}', "SchemaVersion must be 1.1"),
        (b'{"SchemaVersion": 1.0}', "SchemaVersion must be 1.1"),
        (b'{"SchemaVersion": true}', "SchemaVersion must be 1.1"),
        (b'{"SchemaVersion": "1.2"}', "SchemaVersion must be 1.1"),
        (b"[" * 5000 + b"]" * 5000, "not a valid JSON"),
        (b'{"revertToVersionId": "1"}', "SchemaVersion must be 1.1"),  # example 4: a revert is not a patch document
    ],
)
def test_parse_patch_refuses(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        parse_patch(data, "updatableAttributes")
    assert caught.value.field == "updatableAttributes"
    assert "updatableAttributes" in caught.value.message


def test_parse_patch_takes_at_most_10_kb() -> None:
    body = b'{"SchemaVersion":1.1}'
    assert parse_patch(body + b" " * (MAX_PATCH_BYTES - len(body)), "removableAttributes") == {"SchemaVersion": 1.1}
    with pytest.raises(ValidationError, match="10 KB") as caught:
        parse_patch(body + b" " * (MAX_PATCH_BYTES - len(body) + 1), "removableAttributes")
    assert caught.value.field == "removableAttributes"


def test_apply_needs_one_of_the_two_fields() -> None:
    with pytest.raises(ValidationError, match="updatableAttributes or removableAttributes") as caught:
        apply_updates(DOC, None, None, force=True, is_primary=False)
    assert caught.value.field == "DICOMUpdates"


# -- the guide's examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("is_primary", [True, False])
def test_example_1_inserts_or_updates_a_patient_attribute(is_primary: bool) -> None:
    result = run(parse_patch(b'{"SchemaVersion":1.1,"Patient":{"DICOM":{"PatientName":"MX^MX"}}}', "u"), None)
    assert result.document["Patient"]["DICOM"]["PatientName"] == "MX^MX"
    assert without(result.document, ("Patient", "DICOM", "PatientName")) == without(
        DOC, ("Patient", "DICOM", "PatientName")
    )
    assert result.removed_frame_ids == set()
    inserted = run(patch(Patient={"DICOM": {"EthnicGroup": "NONE"}}), is_primary=is_primary)
    assert inserted.document["Patient"]["DICOM"]["EthnicGroup"] == "NONE"


def test_example_2_removes_an_attribute_whose_key_and_value_match() -> None:
    data = b'{"SchemaVersion":1.1,"Study":{"DICOM":{"StudyDescription":"CHEST"}}}'
    result = run(None, parse_patch(data, "removableAttributes"))
    assert "StudyDescription" not in result.document["Study"]["DICOM"]
    assert without(result.document, ("Study", "DICOM", "StudyDescription")) == without(
        DOC, ("Study", "DICOM", "StudyDescription")
    )
    assert result.removed_frame_ids == set()


def test_example_2_refuses_a_value_that_does_not_match_or_an_absent_attribute() -> None:
    refused(None, patch(Study={"DICOM": {"StudyDescription": "CT CHEST"}}), match="does not match")
    refused(None, patch(Study={"DICOM": {"Occupation": "x"}}), match="not in the image set")


def test_example_3_removes_an_instance_with_force_and_reports_its_frames() -> None:
    removal = parse_patch(
        json.dumps(instance_patch(GUIDE_UID, GUIDE_UID, {})).encode(),
        "removableAttributes",
    )
    result = run(None, removal, force=True)
    assert GUIDE_UID not in result.document["Study"]["Series"][GUIDE_UID]["Instances"]
    assert result.removed_frame_ids == {frame_id(GUIDE_UID, 0), frame_id(GUIDE_UID, 1)}
    assert document.frame_ids(result.document) == document.frame_ids(DOC) - result.removed_frame_ids
    assert document.instance_count(result.document) == 3


def test_example_3_removing_an_instance_needs_force() -> None:
    refused(None, instance_patch(GUIDE_UID, GUIDE_UID, {}), match=r"only be removed with force \(guide 6941\)")
    refused(None, instance_patch(GUIDE_UID, GUIDE_UID, {}), is_primary=True, match="force")


def test_removing_the_last_instance_of_a_series_removes_the_series() -> None:
    removal = patch(Study={"Series": {SERIES_B: {"Instances": {SOP_B1: {}, SOP_B2: {}}}}})
    result = run(None, removal, force=True, is_primary=True)
    assert list(result.document["Study"]["Series"]) == [GUIDE_UID]
    assert result.removed_frame_ids == {frame_id(SOP_B1, i) for i in range(3)} | {frame_id(SOP_B2, 0)}


def test_removing_every_instance_is_refused() -> None:
    everything = patch(
        Study={
            "Series": {
                GUIDE_UID: {"Instances": {GUIDE_UID: {}, SOP_A2: {}}},
                SERIES_B: {"Instances": {SOP_B1: {}, SOP_B2: {}}},
            }
        }
    )
    refused(None, everything, force=True, match="DeleteImageSet")


def test_a_whole_series_is_not_removed_by_naming_it() -> None:
    refused(None, patch(Study={"Series": {SERIES_B: {}}}), force=True, match="remove its instances")


def test_example_5_adds_a_private_element_with_its_vr() -> None:
    body = {"DICOM": {"001910F9": "97"}, "DICOMVRs": {"001910F9": "DS"}}
    result = run(instance_patch(GUIDE_UID, GUIDE_UID, body), force=True)
    entry = instance(result)
    assert entry["DICOM"]["001910F9"] == "97"
    assert entry["DICOMVRs"] == {"00090010": "LO", "00091001": "LO", "001910F9": "DS"}
    assert entry["ImageFrames"] == instance_entry(DOC)["ImageFrames"]


def instance_entry(doc: dict[str, Any], series: str = GUIDE_UID, sop: str = GUIDE_UID) -> dict[str, Any]:
    entry: dict[str, Any] = doc["Study"]["Series"][series]["Instances"][sop]
    return entry


def test_example_5_private_elements_need_force() -> None:
    body = {"DICOM": {"001910F9": "97"}, "DICOMVRs": {"001910F9": "DS"}}
    refused(instance_patch(GUIDE_UID, GUIDE_UID, body), match=r"private elements are added.*force")


def test_a_new_private_element_needs_its_vr_even_with_force() -> None:
    refused(instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"001910F9": "97"}}), force=True, match="DICOMVRs")


def test_a_private_creator_takes_lo_and_records_it() -> None:
    result = run(instance_patch(SERIES_B, SOP_B1, {"DICOM": {"00190010": "ACME 1.0"}}), force=True)
    assert instance(result, SERIES_B, SOP_B1)["DICOMVRs"] == {"00190010": "LO"}


def test_example_6_updates_a_private_element_with_its_stored_vr() -> None:
    body = {"DICOM": {"00091001": "GE_GENESIS_DD"}}
    result = run(instance_patch(GUIDE_UID, GUIDE_UID, body), force=True, is_primary=True)
    entry = instance(result)
    assert entry["DICOM"]["00091001"] == "GE_GENESIS_DD"
    assert entry["DICOMVRs"] == {"00090010": "LO", "00091001": "LO"}
    refused(instance_patch(GUIDE_UID, GUIDE_UID, body), match="force")


def test_private_elements_are_removed_with_their_vrs_and_force() -> None:
    body = {"DICOM": {"00091001": "GE_GENESIS_FF"}, "DICOMVRs": {"00091001": "LO"}}
    result = run(None, instance_patch(GUIDE_UID, GUIDE_UID, body), force=True)
    assert "00091001" not in instance(result)["DICOM"]
    assert instance(result)["DICOMVRs"] == {"00090010": "LO"}
    refused(None, instance_patch(GUIDE_UID, GUIDE_UID, body), match="force")


def test_removing_every_recorded_vr_drops_dicomvrs() -> None:
    body = {"DICOM": {"00091001": "GE_GENESIS_FF", "00090010": "GEMS_IDEN_01"}}
    result = run(None, instance_patch(GUIDE_UID, GUIDE_UID, body), force=True)
    assert "DICOMVRs" not in instance(result)


def test_example_7_updates_the_sop_instance_uid_with_force() -> None:
    body = {"DICOM": {"SOPInstanceUID": SOP_B1_NEW}}
    result = run(instance_patch(SERIES_B, SOP_B1, body), force=True)
    instances = result.document["Study"]["Series"][SERIES_B]["Instances"]
    assert list(instances) == [SOP_B1_NEW, SOP_B2]
    assert instances[SOP_B1_NEW]["DICOM"]["SOPInstanceUID"] == SOP_B1_NEW
    assert instances[SOP_B1_NEW]["ImageFrames"] == instance_entry(DOC, SERIES_B, SOP_B1)["ImageFrames"]
    assert result.removed_frame_ids == set()


def test_example_7_is_refused_without_force_and_on_primary_image_sets() -> None:
    body = {"DICOM": {"SOPInstanceUID": SOP_B1_NEW}}
    refused(instance_patch(SERIES_B, SOP_B1, body), match=r"only be changed with force \(guide 22650")
    refused(instance_patch(SERIES_B, SOP_B1, body), force=True, is_primary=True, match="primary image set")


def test_a_new_sop_instance_uid_must_be_unique_and_a_uid() -> None:
    refused(instance_patch(SERIES_B, SOP_B1, {"DICOM": {"SOPInstanceUID": GUIDE_UID}}), force=True, match="unique")
    refused(instance_patch(SERIES_B, SOP_B1, {"DICOM": {"SOPInstanceUID": "1.2.x"}}), force=True, match="valid UID")
    refused(instance_patch(SERIES_B, SOP_B1, {"DICOM": {"SOPInstanceUID": None}}), force=True, match="valid UID")


def test_series_instance_uid_update_renames_the_series() -> None:
    result = run(patch(Study={"Series": {SERIES_B: {"DICOM": {"SeriesInstanceUID": "1.2.3.4"}}}}), force=True)
    assert list(result.document["Study"]["Series"]) == [GUIDE_UID, "1.2.3.4"]
    assert result.document["Study"]["Series"]["1.2.3.4"]["DICOM"]["SeriesInstanceUID"] == "1.2.3.4"
    refused(
        patch(Study={"Series": {SERIES_B: {"DICOM": {"SeriesInstanceUID": GUIDE_UID}}}}), force=True, match="another"
    )


def test_instance_and_series_renamed_in_one_patch() -> None:
    body = {"DICOM": {"SeriesInstanceUID": "1.2.3.4"}, "Instances": {SOP_B1: {"DICOM": {"SOPInstanceUID": "1.2.3.5"}}}}
    result = run(patch(Study={"Series": {SERIES_B: body}}), force=True)
    assert list(result.document["Study"]["Series"]["1.2.3.4"]["Instances"]) == ["1.2.3.5", SOP_B2]


def test_primary_workflow_updates_the_patient_id_of_the_non_primary_copy() -> None:
    # guide 7766-7873: copy, update the copy (PatientID 1234), delete, promote.
    updatable = parse_patch(b'{"SchemaVersion":1.1,"Patient":{"DICOM":{"PatientID":"1234"}}}', "updatableAttributes")
    result = run(updatable, is_primary=False)
    assert result.document["Patient"]["DICOM"]["PatientID"] == "1234"
    assert result.document["ImageSetID"] == IMAGE_SET


def test_sdk_use_cases_update_then_remove_the_study_description() -> None:
    update = patch(Study={"DICOM": {"StudyDescription": "CT CHEST"}})
    updated = run(update, force=True)
    assert updated.document["Study"]["DICOM"]["StudyDescription"] == "CT CHEST"
    removed = run(None, update, doc=updated.document)
    assert "StudyDescription" not in removed.document["Study"]["DICOM"]


def test_removals_apply_before_updates() -> None:
    result = run(
        patch(Study={"DICOM": {"StudyDescription": "HEAD"}}), patch(Study={"DICOM": {"StudyDescription": "CHEST"}})
    )
    assert result.document["Study"]["DICOM"]["StudyDescription"] == "HEAD"
    refused(
        instance_patch(GUIDE_UID, SOP_A2, {"DICOM": {"InstanceNumber": "2"}}),
        instance_patch(GUIDE_UID, SOP_A2, {}),
        force=True,
        match="does not exist",
        field="updatableAttributes",
    )


# -- never updatable (guide 22649) ------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("field", ["updatableAttributes", "removableAttributes"])
@pytest.mark.parametrize(
    "body",
    [
        {"SchemaVersion": 1.1, "DatastoreID": "2" * 32},
        {"SchemaVersion": 1.1, "ImageSetID": "f" * 32},
        patch(Patient={"DICOM": {"SchemaVersion": 1.1}}),
        patch(Patient={"DICOM": {"ImageSetID": "f" * 32}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"PixelData": None}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"7FE00010": None}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"Checksum": 1}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"Width": 1}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"Height": 1}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"ImageFrames": []}}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"ImageFrames": []}),
        instance_patch(GUIDE_UID, GUIDE_UID, {"StoredTransferSyntaxUID": "1.2.840.10008.1.2.1"}),
        patch(Study={"Series": {GUIDE_UID: {"DICOM": {"Modality": "CT"}}}}),
    ],
)
def test_service_generated_attributes_are_never_changed(body: dict[str, Any], field: str, force: bool) -> None:
    args = (body, None) if field == "updatableAttributes" else (None, body)
    error = refused(*args, force=force, match="generated by HealthImaging|must be written PixelData")
    assert error.field == field


# -- UIDs and StudyID (guide 22650, 6937-6939) ------------------------------------------------------------

UID_UPDATES = [
    patch(Study={"DICOM": {"StudyInstanceUID": "1.2.3"}}),
    patch(Study={"DICOM": {"StudyID": "2"}}),
    patch(Study={"Series": {GUIDE_UID: {"DICOM": {"SeriesInstanceUID": "1.2.3.9"}}}}),
    instance_patch(GUIDE_UID, SOP_A2, {"DICOM": {"SOPInstanceUID": "1.2.3.10"}}),
]


@pytest.mark.parametrize("body", UID_UPDATES)
def test_uids_and_study_id_need_force_and_a_non_primary_image_set(body: dict[str, Any]) -> None:
    refused(body, match="only be changed with force")
    refused(body, force=True, is_primary=True, match="even with force")
    refused(body, is_primary=True, match="primary image set")
    result = run(body, force=True)
    assert result.document != DOC
    assert result.removed_frame_ids == set()


def test_study_instance_uid_update_with_force() -> None:
    result = run(UID_UPDATES[0], force=True)
    assert result.document["Study"]["DICOM"]["StudyInstanceUID"] == "1.2.3"


@pytest.mark.parametrize(
    "body",
    [
        patch(Study={"DICOM": {"StudyInstanceUID": STUDY_UID}}),
        patch(Study={"Series": {GUIDE_UID: {"DICOM": {"SeriesInstanceUID": GUIDE_UID}}}}),
        instance_patch(GUIDE_UID, SOP_A2, {"DICOM": {"SOPInstanceUID": SOP_A2}}),
    ],
)
def test_identity_uids_cannot_be_removed(body: dict[str, Any]) -> None:
    refused(None, body, force=True, match="cannot be removed")
    refused(None, body, match="cannot be removed")


def test_study_id_removal_follows_the_update_rule() -> None:
    body = patch(Study={"DICOM": {"StudyID": "1"}})
    refused(None, body, match="force")
    refused(None, body, force=True, is_primary=True, match="primary")
    assert "StudyID" not in run(None, body, force=True).document["Study"]["DICOM"]


# -- force-only updates (guide 22651-22654) ---------------------------------------------------------------

FORCE_ONLY = [
    # SQ (22651)
    (patch(Study={"DICOM": {"ProcedureCodeSequence": [{"CodeValue": "X1"}]}}), "sequence"),
    (patch(Study={"DICOM": {"ReferencedStudySequence": None}}), "sequence"),
    # multi-valued (22652)
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"ImageType": "DERIVED"}}), "multi-valued"),
    (patch(Patient={"DICOM": {"OtherPatientNames": "DOE^J"}}), "multi-valued"),
    (patch(Study={"DICOM": {"StudyDescription": "A\\B"}}), "multi-valued"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": [11, 12]}}), "multi-valued"),
    # value incompatible with the VR (22653)
    (patch(Study={"DICOM": {"StudyDate": "2024-5-1"}}), "not a valid DA"),
    (patch(Study={"DICOM": {"StudyDate": "20241301"}}), "calendar date"),
    (patch(Study={"DICOM": {"StudyTime": "25:00"}}), "not a valid TM"),
    (patch(Study={"DICOM": {"PatientAge": "45"}}), "not a valid AS"),
    (patch(Study={"DICOM": {"PatientWeight": "seventy"}}), "not a valid DS"),
    (patch(Study={"DICOM": {"PatientWeight": "1234567890.1234567"}}), "longer than the 16"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOM": {"SeriesNumber": "1A"}}}}), "not a valid IS"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOM": {"SeriesNumber": "99999999999"}}}}), "32-bit"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOM": {"FrameOfReferenceUID": "1.2.abc"}}}}), "not a valid UI"),
    (patch(Study={"DICOM": {"StudyDescription": "x" * 65}}), "longer than the 64"),
    (patch(Patient={"DICOM": {"PatientSex": "m"}}), "not a valid CS"),
    (patch(Patient={"DICOM": {"PatientName": 5}}), "not a string"),
    (patch(Patient={"DICOM": {"PatientName": "A=B=C=D"}}), "person name"),
    (patch(Patient={"DICOM": {"PatientComments": "line\x00"}}), "control character"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": -1}}), "outside the range"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": "15"}}), "not an integer"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": 1.5}}), "not an integer"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"RescaleSlope": "1", "RescaleType": "HU\x1b$"}}), None),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"EncapsulatedDocument": "not base64!"}}), "base64"),
    (
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": 15}, "DICOMVRs": {"00280102": "LO"}}),
        "in the DICOM dictionary",
    ),
    # non-standard (22654)
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"PatientNme": "X"}}), "not a valid DICOM attribute"),
    (
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"60000010": 512}, "DICOMVRs": {"60000010": "US"}}),
        "not a valid DICOM attribute",
    ),
]


@pytest.mark.parametrize(("body", "message"), FORCE_ONLY)
def test_force_only_updates(body: dict[str, Any], message: str | None) -> None:
    if message is None:  # an ESC (character set escape) is not a control character to refuse
        assert run(body).document != DOC
        return
    refused(body, match=message)
    result = run(body, force=True)
    assert result.document != DOC
    assert result.removed_frame_ids == set()


def test_a_sequence_is_replaced_whole() -> None:
    items = [{"ReferencedSOPClassUID": "1.2.840.10008.3.1.2.3.1", "ReferencedSOPInstanceUID": "9.9"}]
    result = run(patch(Study={"DICOM": {"ReferencedStudySequence": items}}), force=True)
    assert result.document["Study"]["DICOM"]["ReferencedStudySequence"] == items


def test_a_private_sequence_replaces_its_nested_vrs() -> None:
    doc = copy.deepcopy(DOC)
    entry = instance_entry(doc)
    entry["DICOM"]["00291020"] = [{"00291010": "A"}]
    entry["DICOMVRs"].update({"00291020": "SQ", "00291020.00291010": "LO"})
    body = {"DICOM": {"00291020": [{"00291011": 7}]}, "DICOMVRs": {"00291020.00291011": "US"}}
    result = run(instance_patch(GUIDE_UID, GUIDE_UID, body), force=True, doc=doc)
    assert instance(result)["DICOM"]["00291020"] == [{"00291011": 7}]
    assert instance(result)["DICOMVRs"] == {
        "00090010": "LO",
        "00091001": "LO",
        "00291020": "SQ",
        "00291020.00291011": "US",
    }


def test_ds_and_is_numbers_are_stored_as_their_text() -> None:
    body = patch(
        Study={
            "DICOM": {"PatientWeight": 70.5, "PatientSize": 2.0},
            "Series": {GUIDE_UID: {"DICOM": {"SeriesNumber": 7}}},
        }
    )
    result = run(body)
    assert result.document["Study"]["DICOM"]["PatientWeight"] == "70.5"
    assert result.document["Study"]["DICOM"]["PatientSize"] == "2"
    assert result.document["Study"]["Series"][GUIDE_UID]["DICOM"]["SeriesNumber"] == "7"


def test_valid_values_of_each_kind_need_no_force() -> None:
    body = patch(
        Patient={"DICOM": {"PatientBirthDate": "19700101", "PatientBirthTime": "101010.5", "PatientSex": "F"}},
        Study={
            "DICOM": {"StudyTime": "0835", "PatientAge": "045Y", "PatientWeight": None, "AccessionNumber": ""},
            "Series": {
                GUIDE_UID: {
                    "DICOM": {"SeriesDate": "20240501", "FrameOfReferenceUID": "1.2.840.10008.1"},
                    "Instances": {
                        GUIDE_UID: {
                            "DICOM": {
                                "AcquisitionDateTime": "20240501083501.123456+0100",
                                "SmallestImagePixelValue": -5,
                                "RescaleIntercept": "-1024",
                                "ImageComments": "a\\b is fine in LT",
                                "EncapsulatedDocument": "AAEC",
                                "DerivationDescription": None,
                            },
                            "DICOMVRs": {"00280106": "SS"},
                        }
                    },
                }
            },
        },
    )
    result = run(body)
    entry = instance(result)
    assert entry["DICOM"]["SmallestImagePixelValue"] == -5
    assert entry["DICOMVRs"]["00280106"] == "SS"


def nested_sequence(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [{"ReferencedStudySequence": value}]
    return value


# -- never, even with force -------------------------------------------------------------------------------

NEVER = [
    # across modules (guide 22655)
    (patch(Study={"DICOM": {"PatientName": "X^Y"}}), "Patient-level attribute.*Patient.DICOM"),
    (patch(Patient={"DICOM": {"StudyDescription": "X"}}), "Study-level attribute"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"SeriesDescription": "X"}}), "Series-level attribute"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOM": {"SOPClassUID": "1.2"}}}}), "Instance-level attribute"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOM": {"00191010": "X"}}}}), "private elements belong to instances"),
    (patch(Patient={"DICOM": {"PatientNme": "X"}}), "non-standard attributes belong to instances"),
    # modules that do not exist (guide 22656)
    (patch(Study={"Series": {"9.9.9": {"DICOM": {"SeriesDescription": "X"}}}}), "cannot add a series"),
    (instance_patch(GUIDE_UID, "9.9.9", {"DICOM": {"InstanceNumber": "1"}}), "cannot add an instance"),
    (instance_patch(SERIES_B, GUIDE_UID, {"DICOM": {"InstanceNumber": "1"}}), "cannot add an instance"),
    # the patch's shape
    ({"SchemaVersion": 1.1, "Series": {}}, "not part of a metadata patch"),
    (patch(Patient=[]), "must be a JSON object"),
    (patch(Patient={"DICOM": {}, "DICOMVRs": {}}), "not part of a metadata patch"),
    (patch(Study={"Series": {GUIDE_UID: {"DICOMVRs": {}}}}), "not part of a metadata patch"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"Foo": {}}), "not part of a metadata patch"),
    ({"Patient": {"DICOM": {"PatientName": "X"}}}, "SchemaVersion"),
    # keys and values
    (patch(Patient={"DICOM": {"00100010": "X"}}), "must be written PatientName"),
    (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"001910f9": "1"}}), "must be written 001910F9"),
    (patch(Patient={"DICOM": {"PatientName": {"Alphabetic": "X"}}}), "is an object"),
    (patch(Patient={"DICOM": {"PatientName": True}}), "true/false"),
    (patch(Study={"DICOM": {"PatientWeight": float("nan")}}), "finite"),
    (patch(Patient={"DICOM": {"OtherPatientNames": []}}), "empty list"),
    (patch(Study={"DICOM": {"ReferencedStudySequence": [1, 2]}}), "list of objects"),
    (patch(Study={"DICOM": {"ReferencedStudySequence": [{"ReferencedSOPInstanceUID": {"a": 1}}]}}), "is an object"),
    (patch(Study={"DICOM": {"ReferencedStudySequence": nested_sequence(40)}}), "deeper"),
    # DICOMVRs
    (
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"001910F9": "1"}, "DICOMVRs": {"001910F9": "XX"}}),
        "VR name",
    ),
    (
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"001910F9": "1"}, "DICOMVRs": {"0019-10F9": "DS"}}),
        "not a DICOMVRs key",
    ),
    (
        instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"001910F9": "1"}, "DICOMVRs": {"001910FA": "DS"}}),
        "does not name",
    ),
]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(("body", "message"), NEVER)
def test_refused_even_with_force(body: dict[str, Any], message: str, force: bool) -> None:
    refused(body, force=force, match=message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (patch(Study={"DICOM": {"PatientName": "MISTER^CT"}}), "Patient-level attribute"),
        (patch(Study={"Series": {"9.9.9": {"Instances": {"1.2": {}}}}}), "cannot add a series"),
        (instance_patch(GUIDE_UID, "9.9.9", {}), "cannot add an instance"),
        (instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"HighBit": 15}, "DICOMVRs": {"00280103": "US"}}), "not name"),
        (patch(Study={"DICOM": {"StudyDescription": {"x": 1}}}), "does not match"),
        (patch(Patient={"DICOM": {"PatientSex": False}}), "does not match"),
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_removals_refused_even_with_force(body: dict[str, Any], message: str, force: bool) -> None:
    refused(None, body, force=force, match=message)


def test_removal_matches_numbers_with_their_text_and_sequences_whole() -> None:
    doc = run(patch(Study={"DICOM": {"PatientWeight": "70.50"}})).document
    assert (
        "PatientWeight"
        not in run(None, patch(Study={"DICOM": {"PatientWeight": 70.5}}), doc=doc).document["Study"]["DICOM"]
    )
    sequence = DOC["Study"]["DICOM"]["ReferencedStudySequence"]
    removal = patch(Study={"DICOM": {"ReferencedStudySequence": sequence}})
    assert "ReferencedStudySequence" not in run(None, removal).document["Study"]["DICOM"]
    refused(None, patch(Study={"DICOM": {"ReferencedStudySequence": sequence[:1]}}), match="does not match")


def test_removal_of_an_instance_named_in_a_series_that_also_loses_an_element() -> None:
    removal = patch(Study={"Series": {SERIES_B: {"DICOM": {"PatientPosition": "FFS"}, "Instances": {SOP_B2: {}}}}})
    result = run(None, removal, force=True)
    assert "PatientPosition" not in result.document["Study"]["Series"][SERIES_B]["DICOM"]
    assert list(result.document["Study"]["Series"][SERIES_B]["Instances"]) == [SOP_B1]


def test_a_bulk_data_reference_is_removed_by_its_stored_value() -> None:
    doc = copy.deepcopy(DOC)
    instance_entry(doc)["DICOM"]["EncapsulatedDocument"] = {"BulkDataReference": "c" * 32}
    removal = instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"EncapsulatedDocument": {"BulkDataReference": "c" * 32}}})
    assert run(None, removal, doc=doc).document == DOC


def test_non_standard_attribute_with_force_is_stored() -> None:
    result = run(instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"MyNote": "x"}}), force=True)
    assert instance(result)["DICOM"]["MyNote"] == "x"
    assert run(None, instance_patch(GUIDE_UID, GUIDE_UID, {"DICOM": {"MyNote": "x"}}), doc=result.document)


# -- properties -------------------------------------------------------------------------------------------

TEXT_LINE = st.text(max_size=40).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s))
SAFE_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", max_size=16)
NEW_ELEMENTS: list[tuple[str, str, st.SearchStrategy[Any], str | None]] = [
    # (level, key, value strategy, VR for DICOMVRs); none of these keys is in DOC
    ("Patient", "EthnicGroup", SAFE_TEXT, None),
    ("Patient", "PatientComments", TEXT_LINE, None),
    ("Patient", "PatientBirthTime", st.sampled_from(["10", "1010", "101010", "101010.123"]), None),
    ("Study", "Occupation", SAFE_TEXT, None),
    ("Study", "PatientSize", st.floats(min_value=0.1, max_value=3.0).map(lambda f: round(f, 3)), None),
    ("Study", "AdditionalPatientHistory", SAFE_TEXT, None),
    ("Series", "SeriesDescription", SAFE_TEXT, None),
    ("Series", "BodyPartExamined", st.sampled_from(["CHEST", "HEAD", "ABDOMEN"]), None),
    ("Instance", "ImageComments", TEXT_LINE, None),
    ("Instance", "ContentDate", st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"), None),
    ("Instance", "InstanceNumber", st.integers(min_value=-(2**31), max_value=2**31 - 1), None),
    ("Instance", "00291010", SAFE_TEXT, "LO"),
    ("Instance", "00291011", st.integers(min_value=0, max_value=65535), "US"),
]
PLACES = [(GUIDE_UID, GUIDE_UID), (GUIDE_UID, SOP_A2), (SERIES_B, SOP_B1), (SERIES_B, SOP_B2)]


@st.composite
def new_element_patches(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    force = draw(st.booleans())
    chosen = draw(st.lists(st.sampled_from(NEW_ELEMENTS), min_size=1, unique_by=lambda e: (e[0], e[1])))
    out: dict[str, Any] = patch()
    for level, key, values, vr in chosen:
        if vr is not None and not force:
            continue
        value = draw(values)
        series, sop = draw(st.sampled_from(PLACES))
        if level in ("Patient", "Study"):
            out.setdefault(level, {}).setdefault("DICOM", {})[key] = value
            continue
        series_patch = out.setdefault("Study", {}).setdefault("Series", {}).setdefault(series, {})
        if level == "Series":
            series_patch.setdefault("DICOM", {})[key] = value
            continue
        instance_body = series_patch.setdefault("Instances", {}).setdefault(sop, {})
        instance_body.setdefault("DICOM", {})[key] = value
        if vr is not None:
            instance_body.setdefault("DICOMVRs", {})[key] = vr
    return out, force


@settings(max_examples=200, deadline=None)
@given(new_element_patches())
def test_property_update_then_remove_restores_the_document(case: tuple[dict[str, Any], bool]) -> None:
    body, force = case
    updated = run(body, force=force, is_primary=not force)
    restored = run(None, body, force=force, is_primary=not force, doc=updated.document)
    assert restored.document == DOC
    assert updated.removed_frame_ids == restored.removed_frame_ids == set()


ODD_KEYS = [
    "StudyInstanceUID",
    "StudyID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "PixelData",
    "ImageFrames",
    "00091001",
    "00090010",
    "001910F9",
    "001910f9",
    "60000010",
    "00100010",
    "PatientNme",
    "DICOM",
    "DICOMVRs",
    "",
]
KEYS = st.sampled_from(ODD_KEYS) | st.sampled_from(
    [  # ordinary attributes of each level, drawn as often as all the odd keys together
        "PatientName",
        "PatientID",
        "PatientSex",
        "StudyDescription",
        "StudyDate",
        "PatientAge",
        "PatientWeight",
        "ReferencedStudySequence",
        "SeriesDescription",
        "SeriesNumber",
        "ImageType",
        "HighBit",
        "InstanceNumber",
        "ImageComments",
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["1.2.3", "GE_GENESIS_FF", "CHEST", "20240501", "a\\b", "LO", "DS"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
DICOM_OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=3)
INSTANCE_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "DICOM": DICOM_OBJECTS | JSON_VALUES,
        "DICOMVRs": st.dictionaries(KEYS | st.sampled_from(["001910F9.00091001", "x"]), JSON_VALUES, max_size=2),
        "ImageFrames": JSON_VALUES,
    },
)
UIDS = st.sampled_from([GUIDE_UID, SOP_A2, SERIES_B, SOP_B1, SOP_B2, "9.9"])
SERIES_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "DICOM": DICOM_OBJECTS,
        "Instances": st.dictionaries(UIDS, INSTANCE_BODIES, max_size=3) | JSON_VALUES,
    },
)
SHAPED_PATCHES = st.fixed_dictionaries(
    {"SchemaVersion": st.sampled_from([1.1, 1.1, 1.1, 1.1, "1.1", 1.0, None])},
    optional={
        "Patient": st.fixed_dictionaries({}, optional={"DICOM": DICOM_OBJECTS}) | JSON_VALUES,
        "Study": st.fixed_dictionaries(
            {},
            optional={"DICOM": DICOM_OBJECTS, "Series": st.dictionaries(UIDS, SERIES_BODIES, max_size=2)},
        ),
    },
)
PATCHES = st.one_of(
    SHAPED_PATCHES,
    SHAPED_PATCHES,
    SHAPED_PATCHES,
    st.dictionaries(st.text(max_size=8) | KEYS | st.just("DatastoreID"), JSON_VALUES, max_size=3),
)


def check_invariants(result: PatchResult) -> None:
    """(c) the service fields stay, remaining instances keep their frames, removed frames are reported."""
    doc = result.document
    assert (doc["SchemaVersion"], doc["DatastoreID"], doc["ImageSetID"]) == (
        DOC["SchemaVersion"],
        DOC["DatastoreID"],
        DOC["ImageSetID"],
    )
    original_frames = [
        entry["ImageFrames"] for series in DOC["Study"]["Series"].values() for entry in series["Instances"].values()
    ]
    for series in doc["Study"]["Series"].values():
        assert series["Instances"]
        for entry in series["Instances"].values():
            assert entry["ImageFrames"] in original_frames
            assert entry["StoredTransferSyntaxUID"] == "1.2.840.10008.1.2.4.202"
    assert document.frame_ids(doc) | result.removed_frame_ids == document.frame_ids(DOC)
    assert not document.frame_ids(doc) & result.removed_frame_ids


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.none() | PATCHES, st.none() | PATCHES, st.booleans(), st.booleans())
def test_property_random_patches_raise_only_validation_errors(
    updatable: dict[str, Any] | None, removable: dict[str, Any] | None, force: bool, is_primary: bool
) -> None:
    try:
        result = run(updatable, removable, force=force, is_primary=is_primary)
    except ValidationError as error:
        field = error.field
    else:
        check_invariants(result)
        return
    assert field in ("updatableAttributes", "removableAttributes", "DICOMUpdates")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | PATCHES.map(lambda p: json.dumps(p).encode()))
def test_property_parse_patch_raises_only_validation_errors(data: bytes) -> None:
    try:
        parsed = parse_patch(data, "updatableAttributes")
    except ValidationError as error:
        field = error.field
    else:
        assert parsed["SchemaVersion"] in (1.1, "1.1")
        return
    assert field == "updatableAttributes"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(PLACES), unique=True, max_size=3),
    new_element_patches(),
    st.sampled_from([None, SOP_B1_NEW, "1.2.3.77"]),
)
def test_property_valid_patches_keep_service_fields_and_frames(
    removed: list[tuple[str, str]], case: tuple[dict[str, Any], bool], new_sop: str | None
) -> None:
    body, _ = case
    removal: dict[str, Any] = patch(Study={"Series": {}})
    for series, sop in removed:
        removal["Study"]["Series"].setdefault(series, {"Instances": {}})["Instances"][sop] = {}
    update = copy.deepcopy(body)
    series_patches = update.get("Study", {}).get("Series", {})
    for series, sop in removed:  # a removed instance (or series) can no longer be updated
        series_patches.get(series, {}).get("Instances", {}).pop(sop, None)
        if all((series, other) in removed for other in DOC["Study"]["Series"][series]["Instances"]):
            series_patches.pop(series, None)
    if new_sop is not None and (SERIES_B, SOP_B1) not in removed:
        target = update.setdefault("Study", {}).setdefault("Series", {}).setdefault(SERIES_B, {})
        target.setdefault("Instances", {}).setdefault(SOP_B1, {}).setdefault("DICOM", {})["SOPInstanceUID"] = new_sop
    result = run(update, removal if removed else None, force=True, is_primary=False)
    check_invariants(result)
    assert result.removed_frame_ids == {
        frame["ID"] for series, sop in removed for frame in instance_entry(DOC, series, sop)["ImageFrames"]
    }
