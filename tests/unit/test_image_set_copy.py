"""CopyImageSet planning (guide 7874-8040, workflows 7766-7873, quota 22767): selection, merge, force, limits."""

from __future__ import annotations

import hashlib
import json
from copy import deepcopy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhi.dicom.normalize import GroupingKey
from openhi.errors import QuotaExceededError, ValidationError
from openhi.imagesets import document
from openhi.imagesets.copy import (
    MAX_FRAMES_PER_COPY,
    CopyPlan,
    copy_into,
    grouping_of,
    parse_copiable,
    select,
)
from openhi.imagesets.staged import StagedInstance

DATASTORE = "12345678901234567890123456789012"  # guide examples 1-3
SOURCE_ID = "ea92b0d8838c72a3f25d00d13616f87e"
NEW_ID = "b9a06fef182a5f992842f77f8e0868e5"  # example 1's copy, example 2's destination
SUBSET_DESTINATION_ID = "b9eb50d8ee682eb9fcf4acbf92f62bb7"  # example 3
EXAMPLE_SERIES = "1.3.6.1.4.1.5962.99.1.3673257865.2104868982.1369432891697.3666.0"
EXAMPLE_SOP = "1.3.6.1.4.1.5962.99.1.3673257865.2104868982.1369432891697.3669.0"

KEY = GroupingKey(
    study_date="20240501",
    accession_number="A1",
    patient_id="P1",
    study_instance_uid="1.2.3",
    study_id="S1",
    series_instance_uid=EXAMPLE_SERIES,
    series_number="1",
)
OTHER = GroupingKey(
    study_date="20230101",
    accession_number="B2",
    patient_id="P2",
    study_instance_uid="9.8.7",
    study_id="S2",
    series_instance_uid="9.8.7.6",
    series_number="5",
)


def frame_id(sop: str, index: int) -> str:
    return hashlib.sha256(f"{sop}/{index}".encode()).hexdigest()[:32]


def staged(sop: str, key: GroupingKey = KEY, *, frames: int = 1, name: str = "DOE^JANE") -> StagedInstance:
    return StagedInstance(
        input_key=f"{sop}.dcm",
        sop_instance_uid=sop,
        grouping=key,
        patient={"PatientID": key.patient_id, "PatientName": name},
        study={
            "StudyInstanceUID": key.study_instance_uid,
            "StudyDate": key.study_date,
            "AccessionNumber": key.accession_number,
            "StudyID": key.study_id,
            "StudyDescription": f"study of {name}",
        },
        series={"SeriesInstanceUID": key.series_instance_uid, "SeriesNumber": key.series_number, "Modality": "CT"},
        instance={"SOPInstanceUID": sop, "InstanceNumber": "1", "PixelData": None},
        instance_vrs={},
        stored_transfer_syntax="1.2.840.10008.1.2.4.202",
        image_frames=[{"ID": frame_id(sop, i), "FrameSizeInBytes": 10} for i in range(frames)],
        stored_frame_sizes=[10] * frames,
    )


def image_set(image_set_id: str, *instances: StagedInstance) -> dict[str, Any]:
    return document.merge(document.empty_document(DATASTORE, image_set_id), instances)


def sops(doc: dict[str, Any]) -> set[str]:
    return {sop for series in doc["Study"]["Series"].values() for sop in series["Instances"]}


def copiable(series: str, *instances: str, version: object = "1.1") -> str:
    return json.dumps(
        {"SchemaVersion": version, "Study": {"Series": {series: {"Instances": {sop: {} for sop in instances}}}}}
    )


SOURCE = image_set(SOURCE_ID, *(staged(f"{EXAMPLE_SERIES}.{n}", frames=2) for n in range(1, 4)), staged(EXAMPLE_SOP))


# --- guide examples 1-3 ---------------------------------------------------------------------------------------


def test_example_1_copy_without_destination_makes_a_new_image_set() -> None:
    plan = copy_into(select(SOURCE, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert isinstance(plan, CopyPlan)
    assert plan.document["ImageSetID"] == NEW_ID
    assert plan.document["DatastoreID"] == DATASTORE
    assert plan.document["SchemaVersion"] == "1.1"
    assert plan.document["Patient"] == SOURCE["Patient"]
    assert plan.document["Study"] == SOURCE["Study"]
    assert plan.copied_frame_ids == document.frame_ids(SOURCE) == document.frame_ids(plan.document)
    assert len(plan.copied_frame_ids) == 7
    assert plan.grouping == KEY == grouping_of(SOURCE)
    assert SOURCE["ImageSetID"] == SOURCE_ID  # the source is left alone


def test_example_2_copy_into_an_existing_image_set_merges_them() -> None:
    destination = image_set(NEW_ID, staged("1.2.3.100", name="DOE^J"), staged("1.2.3.101", name="DOE^J"))
    plan = copy_into(select(SOURCE, None), destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert plan.document["ImageSetID"] == NEW_ID
    assert sops(plan.document) == sops(SOURCE) | {"1.2.3.100", "1.2.3.101"}
    assert document.instance_count(plan.document) == 6
    assert plan.copied_frame_ids == document.frame_ids(SOURCE)
    assert document.frame_ids(plan.document) == document.frame_ids(SOURCE) | document.frame_ids(destination)
    assert plan.grouping == KEY
    # consistent metadata: the copied data's Patient/Study/Series values follow, like the latest import
    assert plan.document["Patient"]["DICOM"]["PatientName"] == "DOE^JANE"


def test_example_3_copy_one_instance_with_force_into_an_inconsistent_destination() -> None:
    text = (
        '{"SchemaVersion": "1.1", "Study": {"Series": {"' + EXAMPLE_SERIES + '": {"Instances": {"' + EXAMPLE_SOP + '": '
        "{}}}}}}"
    )
    destination = image_set(SUBSET_DESTINATION_ID, staged("9.8.7.6.1", OTHER, name="ROE^RICHARD"))
    selected = select(SOURCE, parse_copiable(text))
    with pytest.raises(ValidationError, match="inconsistent metadata"):
        copy_into(selected, destination, datastore_id=DATASTORE, destination_id=SUBSET_DESTINATION_ID, force=False)
    plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=SUBSET_DESTINATION_ID, force=True)
    assert plan.document["ImageSetID"] == SUBSET_DESTINATION_ID
    assert plan.document["Patient"] == destination["Patient"]
    assert plan.document["Study"]["DICOM"] == destination["Study"]["DICOM"]
    assert list(plan.document["Study"]["Series"]) == ["9.8.7.6"]
    assert plan.document["Study"]["Series"]["9.8.7.6"]["DICOM"] == destination["Study"]["Series"]["9.8.7.6"]["DICOM"]
    assert sops(plan.document) == {"9.8.7.6.1", EXAMPLE_SOP}
    copied = plan.document["Study"]["Series"]["9.8.7.6"]["Instances"][EXAMPLE_SOP]
    assert copied == SOURCE["Study"]["Series"][EXAMPLE_SERIES]["Instances"][EXAMPLE_SOP]
    assert plan.copied_frame_ids == {frame_id(EXAMPLE_SOP, 0)}
    assert plan.grouping == OTHER


def test_example_3_as_printed_in_the_guide_is_not_json() -> None:
    printed = (
        '{"SchemaVersion": "1.1", "Study": {"Series": {"'
        + EXAMPLE_SERIES
        + '": {"Instances": {"'
        + EXAMPLE_SOP
        + '":\n'
        "}}}}}"
    )
    with pytest.raises(ValidationError) as info:
        parse_copiable(printed)
    assert info.value.field == "copiableAttributes"


# --- copiableAttributes -----------------------------------------------------------------------------------------


def test_no_copiable_attributes_copies_everything() -> None:
    assert parse_copiable(None) is None
    assert select(SOURCE, None) == SOURCE


@pytest.mark.parametrize("version", ["1.1", 1.1])
def test_sdk_forms_of_copiable_attributes_are_accepted(version: object) -> None:
    selection = parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP, version=version))
    assert selection is not None
    assert sops(select(SOURCE, selection)) == {EXAMPLE_SOP}


def test_wire_example_of_copiable_attributes() -> None:
    text = '{"SchemaVersion": "1.1", "Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.4": {}}}}}}'
    assert parse_copiable(text) == {
        "SchemaVersion": "1.1",
        "Study": {"Series": {"1.2.3": {"Instances": {"1.2.3.4": {}}}}},
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '"text"',
        "{}",
        '{"Study": {}}',
        '{"Study": {"Series": {}}}',
        '{"Study": {"Series": []}}',
        '{"Study": {"Series": 5}}',
        '{"Study": {"Series": {"1.2": {}}}}',
        '{"Study": {"Series": {"1.2": {"Instances": {}}}}}',
        '{"Study": {"Series": {"1.2": {"Instances": ["1.2.3"]}}}}',
        '{"Study": {"Series": {"1.2": {"Instances": {"1.2.3": {"DICOM": {}}}}}}}',
        '{"Study": {"Series": {"1.2": {"Instances": {"1.2.3": null}}}}}',
        '{"Study": {"Series": {"1.2": {"DICOM": {}, "Instances": {"1.2.3": {}}}}}}',
        '{"Patient": {"DICOM": {}}, "Study": {"Series": {"1.2": {"Instances": {"1.2.3": {}}}}}}',
        '{"SchemaVersion": "2.0", "Study": {"Series": {"1.2": {"Instances": {"1.2.3": {}}}}}}',
        "[" * 100_000 + "]" * 100_000,
        copiable("1.2", *(f"1.2.{n}" for n in range(30_000))),
    ],
)
def test_invalid_copiable_attributes_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_copiable(text)
    assert info.value.field == "copiableAttributes"
    assert info.value.code == "ValidationException"


def test_unknown_series_is_refused() -> None:
    selection = parse_copiable(copiable("1.2.999", EXAMPLE_SOP))
    with pytest.raises(ValidationError, match=r"series 1\.2\.999 is not in the source") as info:
        select(SOURCE, selection)
    assert info.value.field == "copiableAttributes"


def test_unknown_instance_is_refused() -> None:
    selection = parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP, "1.2.999"))
    with pytest.raises(ValidationError, match=r"1\.2\.999 of series") as info:
        select(SOURCE, selection)
    assert info.value.field == "copiableAttributes"


def test_select_checks_a_hand_made_selection_too() -> None:
    with pytest.raises(ValidationError):
        select(SOURCE, {"Study": {"Series": {EXAMPLE_SERIES: {"Instances": {}}}}})


# --- subsets, merges, force -------------------------------------------------------------------------------------


def test_subset_copy_to_a_new_image_set_keeps_only_the_selected_instances() -> None:
    chosen = {f"{EXAMPLE_SERIES}.1", f"{EXAMPLE_SERIES}.3"}
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, *sorted(chosen))))
    plan = copy_into(selected, None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert sops(plan.document) == chosen
    assert plan.copied_frame_ids == {frame_id(sop, i) for sop in chosen for i in range(2)}
    assert document.frame_ids(plan.document) == plan.copied_frame_ids
    assert plan.document["Patient"] == SOURCE["Patient"]
    assert plan.document["Study"]["DICOM"] == SOURCE["Study"]["DICOM"]
    assert (
        plan.document["Study"]["Series"][EXAMPLE_SERIES]["DICOM"]
        == (SOURCE["Study"]["Series"][EXAMPLE_SERIES]["DICOM"])
    )


def test_subset_of_a_multi_series_source_drops_unselected_series() -> None:
    source = image_set(SOURCE_ID, staged("1.1"), staged("2.1", replace(KEY, series_instance_uid="2.2")))
    selected = select(source, parse_copiable(copiable("2.2", "2.1")))
    assert list(selected["Study"]["Series"]) == ["2.2"]
    assert sops(selected) == {"2.1"}


def test_consistent_merge_adds_instances_and_updates_levels() -> None:
    destination = image_set(NEW_ID, staged("1.2.3.100", name="OLD^NAME"))
    destination["Patient"]["DICOM"]["PatientAge"] = "042Y"
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP)))
    plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert sops(plan.document) == {"1.2.3.100", EXAMPLE_SOP}
    assert plan.document["Patient"]["DICOM"] == {"PatientID": "P1", "PatientName": "DOE^JANE", "PatientAge": "042Y"}
    assert plan.document["Study"]["DICOM"]["StudyDescription"] == "study of DOE^JANE"
    assert plan.copied_frame_ids == {frame_id(EXAMPLE_SOP, 0)}
    assert plan.grouping == KEY


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("patient_id", "P9"),
        ("study_instance_uid", "1.2.3.9"),
        ("study_id", "S9"),
        ("accession_number", "A9"),
        ("study_date", "19990101"),
        ("series_instance_uid", "1.2.3.4.9"),
        ("series_number", "9"),
        ("accession_number", None),
    ],
)
def test_each_grouping_element_difference_needs_force(element: str, value: str | None) -> None:
    other = replace(KEY, **{element: value})
    destination = image_set(NEW_ID, staged("1.2.3.100", other, name="ROE^R"))
    assert grouping_of(destination) == other
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP)))
    with pytest.raises(ValidationError, match=r"inconsistent metadata.*use force") as info:
        copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert info.value.code == "ValidationException"
    plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=True)
    assert plan.document["Patient"] == destination["Patient"]
    assert plan.document["Study"]["DICOM"] == destination["Study"]["DICOM"]
    assert {uid: s["DICOM"] for uid, s in plan.document["Study"]["Series"].items()} == {
        uid: s["DICOM"] for uid, s in destination["Study"]["Series"].items()
    }
    assert sops(plan.document) == {"1.2.3.100", EXAMPLE_SOP}
    assert plan.grouping == other


def test_non_grouping_differences_do_not_need_force() -> None:
    destination = image_set(NEW_ID, staged("1.2.3.100", name="SOMEONE^ELSE"))
    plan = copy_into(select(SOURCE, None), destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert document.instance_count(plan.document) == 5


def test_force_into_the_same_series_keeps_the_destination_series_elements() -> None:
    destination = image_set(NEW_ID, staged("1.2.3.100", replace(KEY, series_number="7")))
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP)))
    plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=True)
    assert plan.document["Study"]["Series"][EXAMPLE_SERIES]["DICOM"]["SeriesNumber"] == "7"
    assert sops(plan.document) == {"1.2.3.100", EXAMPLE_SOP}


def test_an_empty_destination_is_filled_like_a_new_image_set() -> None:
    destination = document.empty_document(DATASTORE, NEW_ID)
    plan = copy_into(select(SOURCE, None), destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert plan.document["Study"] == SOURCE["Study"]
    assert plan.document["ImageSetID"] == NEW_ID


# --- uniqueness and the frame quota -----------------------------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_an_instance_already_in_the_destination_is_refused_even_with_force(force: bool) -> None:
    destination = image_set(NEW_ID, staged(EXAMPLE_SOP), staged("1.2.3.100"))
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP)))
    with pytest.raises(ValidationError, match="unique in the image set.*" + EXAMPLE_SOP.replace(".", r"\.")):
        copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=force)


def test_a_duplicate_in_another_destination_series_is_refused_with_force() -> None:
    destination = image_set(NEW_ID, staged(EXAMPLE_SOP, OTHER))
    selected = select(SOURCE, parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP)))
    with pytest.raises(ValidationError, match="unique"):
        copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=True)


def test_a_sop_uid_twice_in_the_selection_is_refused() -> None:
    source = image_set(SOURCE_ID, staged("1.1"), staged("1.1", replace(KEY, series_instance_uid="2.2")))
    with pytest.raises(ValidationError, match="unique"):
        copy_into(select(source, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)


def test_at_most_1000_frames_per_copy() -> None:
    assert MAX_FRAMES_PER_COPY == 1000
    exact = image_set(SOURCE_ID, *(staged(f"1.2.{n}", frames=100) for n in range(10)))
    plan = copy_into(select(exact, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert len(plan.copied_frame_ids) == 1000
    over = image_set(SOURCE_ID, *(staged(f"1.2.{n}", frames=100) for n in range(10)), staged("1.3", frames=1))
    with pytest.raises(QuotaExceededError, match="1001 image frames") as info:
        copy_into(select(over, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert info.value.code == "ServiceQuotaExceededException"
    subset = select(over, parse_copiable(copiable(EXAMPLE_SERIES, "1.3", "1.2.0")))
    assert (
        len(copy_into(subset, None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False).copied_frame_ids) == 101
    )


def test_the_frame_quota_is_adjustable() -> None:
    with pytest.raises(QuotaExceededError):
        copy_into(select(SOURCE, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False, max_frames=6)
    plan = copy_into(
        select(SOURCE, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False, max_frames=7
    )
    assert len(plan.copied_frame_ids) == 7


def test_instances_without_frames_copy() -> None:
    source = image_set(SOURCE_ID, staged("1.9", frames=0))
    plan = copy_into(select(source, None), None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    assert plan.copied_frame_ids == set()
    assert sops(plan.document) == {"1.9"}


# --- grouping and purity ----------------------------------------------------------------------------------------


def test_grouping_of_a_merged_document_is_the_import_grouping() -> None:
    assert grouping_of(image_set(NEW_ID, staged("1.1", OTHER))) == OTHER
    nothing = GroupingKey(None, None, None, None, None, None, None)
    assert grouping_of(document.empty_document(DATASTORE, NEW_ID)) == nothing


def test_grouping_falls_back_to_the_series_key() -> None:
    doc = image_set(NEW_ID, staged("1.1"))
    del doc["Study"]["Series"][EXAMPLE_SERIES]["DICOM"]["SeriesInstanceUID"]
    assert grouping_of(doc).series_instance_uid == EXAMPLE_SERIES


def test_inputs_are_never_modified() -> None:
    source = deepcopy(SOURCE)
    selection = parse_copiable(copiable(EXAMPLE_SERIES, EXAMPLE_SOP))
    selection_before = deepcopy(selection)
    destination = image_set(NEW_ID, staged("9.1", OTHER))
    destination_before = deepcopy(destination)
    selected = select(source, selection)
    selected_before = deepcopy(selected)
    for force in (False, True):
        try:
            plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=force)
        except ValidationError:
            continue
        plan.document["Study"]["Series"]["9.8.7.6"]["Instances"][EXAMPLE_SOP]["ImageFrames"].append({"ID": "x"})
        plan.document["Patient"]["DICOM"]["PatientID"] = "changed"
    new = copy_into(selected, None, datastore_id=DATASTORE, destination_id=NEW_ID, force=False)
    new.document["Study"]["Series"][EXAMPLE_SERIES]["Instances"][EXAMPLE_SOP]["DICOM"]["x"] = 1
    assert source == SOURCE
    assert selection == selection_before
    assert destination == destination_before
    assert selected == selected_before


# --- property ---------------------------------------------------------------------------------------------------


@given(
    frames=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12),
    picks=st.data(),
    existing=st.integers(min_value=0, max_value=5),
    into_destination=st.booleans(),
    force=st.booleans(),
)
def test_copying_a_random_subset(
    frames: list[int], picks: st.DataObject, existing: int, into_destination: bool, force: bool
) -> None:
    source = image_set(SOURCE_ID, *(staged(f"1.5.{n}", frames=count) for n, count in enumerate(frames)))
    all_sops = sorted(sops(source))
    chosen = picks.draw(st.lists(st.sampled_from(all_sops), min_size=1, unique=True))
    destination: dict[str, Any] | None = None
    if into_destination:
        key = KEY if not force else OTHER
        destination = image_set(NEW_ID, *(staged(f"1.6.{n}", key, frames=1) for n in range(existing)))
    before = deepcopy((source, destination))
    selected = select(source, parse_copiable(copiable(EXAMPLE_SERIES, *chosen)))
    plan = copy_into(selected, destination, datastore_id=DATASTORE, destination_id=NEW_ID, force=force)

    base = document.instance_count(destination) if destination is not None else 0
    assert document.instance_count(plan.document) == base + len(chosen)
    assert sops(plan.document) == (sops(destination) if destination else set()) | set(chosen)
    selected_frames = {
        frame_id(f"1.5.{n}", i) for n, count in enumerate(frames) if f"1.5.{n}" in chosen for i in range(count)
    }
    assert plan.copied_frame_ids == selected_frames == document.frame_ids(selected)
    kept = document.frame_ids(destination) if destination is not None else set()
    assert document.frame_ids(plan.document) == kept | selected_frames
    for series in plan.document["Study"]["Series"].values():
        for sop, entry in series["Instances"].items():
            if sop in chosen:
                assert entry == source["Study"]["Series"][EXAMPLE_SERIES]["Instances"][sop]
    assert plan.document["ImageSetID"] == NEW_ID
    assert plan.grouping == (OTHER if destination is not None and existing and force else KEY)
    assert (source, destination) == before
