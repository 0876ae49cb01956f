"""Where instances go (guide 3217-3360, 4270-4290) and how they merge into metadata (guide 4330-4395)."""

from __future__ import annotations

from dataclasses import replace

from openhi.dicom.normalize import GroupingKey
from openhi.imagesets import document
from openhi.imagesets.grouping import plan
from openhi.imagesets.staged import StagedInstance

KEY = GroupingKey(
    study_date="20240501",
    accession_number="A1",
    patient_id="P1",
    study_instance_uid="1.2.3",
    study_id="1",
    series_instance_uid="1.2.3.4",
    series_number="1",
)


def staged(sop: str, key: GroupingKey = KEY, name: str = "DOE^JANE") -> StagedInstance:
    return StagedInstance(
        input_key=f"{sop}.dcm",
        sop_instance_uid=sop,
        grouping=key,
        patient={"PatientID": key.patient_id, "PatientName": name},
        study={"StudyInstanceUID": key.study_instance_uid},
        series={"SeriesInstanceUID": key.series_instance_uid, "Modality": "CT"},
        instance={"SOPInstanceUID": sop, "PixelData": None},
        instance_vrs={},
        stored_transfer_syntax="1.2.840.10008.1.2.4.202",
        image_frames=[{"ID": sop.replace(".", "0").ljust(32, "0")[:32]}],
        stored_frame_sizes=[10],
    )


def test_first_instance_defines_the_primary_when_the_series_is_new() -> None:
    other = replace(KEY, patient_id="P2")
    placements = plan([staged("1"), staged("2", other), staged("3")], None, None)
    assert [(p.is_primary, p.image_set_id, [s.sop_instance_uid for s in p.instances]) for p in placements] == [
        (True, None, ["1", "3"]),
        (False, None, ["2"]),
    ]


def test_existing_primary_takes_matching_instances_and_conflicts_split_by_key() -> None:
    a, b = replace(KEY, patient_id="P2"), replace(KEY, study_date="19990101")
    placements = plan([staged("1", a), staged("2"), staged("3", b), staged("4", a)], "f" * 32, KEY)
    assert [(p.is_primary, p.image_set_id) for p in placements] == [
        (True, "f" * 32),
        (False, None),
        (False, None),
    ]
    assert [len(p.instances) for p in placements] == [1, 2, 1]


def test_merge_replaces_reimported_instances_and_keeps_older_documents() -> None:
    base = document.merge(document.empty_document("d" * 32, "e" * 32), [staged("1"), staged("2")])
    again = document.merge(base, [staged("2", name="DOE^JOHN")])
    assert document.instance_count(base) == document.instance_count(again) == 2
    assert again["Patient"]["DICOM"]["PatientName"] == "DOE^JOHN"
    assert base["Patient"]["DICOM"]["PatientName"] == "DOE^JANE"  # the input document is not modified
    series = again["Study"]["Series"]["1.2.3.4"]
    assert series["DICOM"]["Modality"] == "CT"
    entry = series["Instances"]["2"]
    assert set(entry) == {"DICOM", "StoredTransferSyntaxUID", "ImageFrames"}
    assert again["SchemaVersion"] == "1.1"
    assert document.frame_ids(again) == {s.image_frames[0]["ID"] for s in (staged("1"), staged("2"))}


def test_encoding_is_deterministic_and_content_addressed() -> None:
    doc = document.merge(document.empty_document("d" * 32, "e" * 32), [staged("1")])
    assert document.encode(doc) == document.encode(document.decode(document.encode(doc)))
    assert len(document.content_id(document.encode(doc))) == 32


def test_staged_instances_round_trip() -> None:
    original = staged("1.2.3.4.5")
    assert StagedInstance.from_bytes(original.to_bytes()) == original
