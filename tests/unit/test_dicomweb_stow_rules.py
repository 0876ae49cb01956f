"""STOW-RS pure parts: the response module and status (PS3.18 §10.5.3, Annex I), failure / warning reasons,
Accept negotiation, and the shared series commit (import jobs and STOW-RS) with locked primary image sets."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from openhi.api.dicomweb.stow import response_media_type
from openhi.blobs.memory import MemoryBlobStore
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicom.normalize import GroupingKey
from openhi.dicomweb.stow_parts import (
    CANNOT_UNDERSTAND,
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    PartHeader,
    failure_reason,
    peek,
    warning_reason,
)
from openhi.dicomweb.stow_response import FailedInstance, StoredInstance, StowResult, response_body
from openhi.errors import NotAcceptableError
from openhi.imagesets.model import ImageSetState, ImageSetWorkflowStatus
from openhi.imagesets.staged import StagedInstance
from openhi.imports.commit import PrimaryLockedError, commit_staged, wait_while_locked
from openhi.index.memory import MemoryIndex

BASE = "http://127.0.0.1:1/datastore/" + "d" * 32
DS = "d" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(number: int, sop: str, *, primary: bool = True, warning: int | None = None) -> StoredInstance:
    return StoredInstance(number, "1.2.840.10008.5.1.4.1.1.2", sop, "1.2.3", "1.2.3.4", "a" * 32, primary, warning)


# -- the response -------------------------------------------------------------------------------------------


def test_all_stored_without_warnings_is_200_with_references() -> None:
    result = StowResult(stored=[stored(2, "1.2.3.4.6"), stored(1, "1.2.3.4.5")])
    assert result.status == 200
    body = response_body(result, BASE)
    assert body["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/1.2.3"]}
    assert "00081198" not in body
    items = body["00081199"]["Value"]
    assert [item["00081155"]["Value"] for item in items] == [["1.2.3.4.5"], ["1.2.3.4.6"]]  # request order
    assert items[0] == {
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00081155": {"vr": "UI", "Value": ["1.2.3.4.5"]},
        "00081190": {"vr": "UR", "Value": [f"{BASE}/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"]},
    }


def test_warnings_failures_and_non_primary_image_sets() -> None:
    result = StowResult(
        stored=[stored(1, "1.5", warning=0xB000), stored(3, "1.6", primary=False)],
        failed=[FailedInstance(2, CANNOT_UNDERSTAND, "not DICOM"), FailedInstance(4, 272, "study", "1.2", "1.7")],
    )
    assert result.status == 202
    body = response_body(result, BASE)
    first, second = body["00081199"]["Value"]
    assert first["00081196"] == {"vr": "US", "Value": [0xB000]}
    assert second["00081190"]["Value"][0].endswith("/instances/1.6?imageSetId=" + "a" * 32)
    assert body["00081198"]["Value"] == [
        {"00081197": {"vr": "US", "Value": [0xC000]}},
        {
            "00081150": {"vr": "UI", "Value": ["1.2"]},
            "00081155": {"vr": "UI", "Value": ["1.7"]},
            "00081197": {"vr": "US", "Value": [272]},
        },
    ]


def test_only_warnings_is_202_and_nothing_stored_is_409() -> None:
    assert StowResult(stored=[stored(1, "1.5", warning=0xB007)]).status == 202
    failed = StowResult(target_study="1.9", failed=[FailedInstance(1, OUT_OF_RESOURCES, "busy")])
    assert failed.status == 409
    body = response_body(failed, BASE)
    assert body["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/1.9"]}  # the target resource's study
    assert "00081199" not in body


def test_study_retrieve_url_is_empty_for_several_studies() -> None:
    other = replace(stored(2, "9.9"), study_instance_uid="9.8")
    assert response_body(StowResult(stored=[stored(1, "1.5"), other]), BASE)["00081190"] == {"vr": "UR"}


# -- reasons ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "message", "reason"),
    [
        ("ValidationException", "not a DICOM P10 file: x: the file is empty", CANNOT_UNDERSTAND),
        ("ValidationException", "truncated DICOM file: x: the file ends inside PixelData", CANNOT_UNDERSTAND),
        ("ValidationException", "DICOM attribute SOPInstanceUID does not exist", DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
        ("ValidationException", "pixel data: 10 bytes, 8192 expected", DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
        ("InternalServerException", "local blob store at /x: cannot write", OUT_OF_RESOURCES),
        ("InternalServerException", "unexpected KeyError while importing: 'x'", PROCESSING_FAILURE),
    ],
)
def test_failure_reasons(error_type: str, message: str, reason: int) -> None:
    assert failure_reason(error_type, message) == reason


def test_warning_reason_prefers_the_standard_codes() -> None:
    assert warning_reason([]) is None
    assert warning_reason([{"warning_reason_code": 45571}]) == 45571
    assert warning_reason([{"warning_reason_code": 45571}, {"warning_reason_code": 0xB000}]) == 0xB000
    assert warning_reason([{"warning_reason_code": 0xB000}, {"warning_reason_code": 0xB007}]) == 0xB007


def test_peek_reads_uids_and_never_fails(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID, ds.StudyInstanceUID = "1.2.3.4", "1.2.3"
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    assert peek(tmp_path / "a.dcm") == PartHeader("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.3")
    (tmp_path / "b.dcm").write_bytes(b"\x00\x01 not dicom" * 100)
    assert peek(tmp_path / "b.dcm") == PartHeader()
    assert peek(tmp_path / "missing.dcm") == PartHeader()


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/dicom+json"),
        ("application/dicom+json", "application/dicom+json"),
        ("application/json", "application/json"),
        ("application/dicom+xml;q=0.9, */*;q=0.1", "application/dicom+json"),
        ("application/dicom+json;q=0, application/json", "application/json"),
    ],
)
def test_accept_negotiation(accept: str | None, media: str) -> None:
    assert response_media_type(accept) == media


@pytest.mark.parametrize("accept", ["application/dicom+xml", "image/jpeg, text/html", "application/dicom+json;q=0"])
def test_accept_without_json_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptableError):
        response_media_type(accept)


# -- the shared series commit -------------------------------------------------------------------------------

KEY = GroupingKey("20240501", "A1", "P1", "1.2.3", "1", "1.2.3.4", "1")


def staged(sop: str, key: GroupingKey = KEY) -> StagedInstance:
    return StagedInstance(
        input_key=f"{sop}.dcm",
        sop_instance_uid=sop,
        grouping=key,
        patient={"PatientID": key.patient_id},
        study={"StudyInstanceUID": key.study_instance_uid},
        series={"SeriesInstanceUID": key.series_instance_uid},
        instance={"SOPInstanceUID": sop},
        instance_vrs={},
        stored_transfer_syntax="1.2.840.10008.1.2.4.202",
    )


def test_commit_joins_the_primary_or_goes_non_primary_and_waits_for_locks() -> None:
    index, blobs = MemoryIndex(), MemoryBlobStore()
    datastore = Datastore(DS, "s", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "token")
    index.run(lambda uow: uow.datastores.add(datastore))

    def commit(*instances: StagedInstance) -> list[tuple[str, bool, int]]:
        done = index.run(lambda uow: commit_staged(uow, blobs, lambda: T0, DS, instances))
        return [(a.image_set_id, a.is_primary, a.version) for a in done]

    [(primary, is_primary, version)] = commit(staged("1.1"))
    assert (is_primary, version) == (True, 1)
    assert commit(staged("1.2")) == [(primary, True, 2)]
    [(other, is_primary, version)] = commit(staged("1.3", replace(KEY, patient_id="P2")))  # conflicting metadata
    assert (other != primary, is_primary, version) == (True, False, 1)

    row = index.run(lambda uow: uow.image_sets.get(DS, primary))
    assert row is not None
    index.run(
        lambda uow: uow.image_sets.set_state(
            DS, primary, 2, [ImageSetState.ACTIVE], ImageSetState.LOCKED, ImageSetWorkflowStatus.UPDATING, None, T0
        )
    )
    with pytest.raises(PrimaryLockedError, match="locked"):
        commit(staged("1.4"))
    with pytest.raises(PrimaryLockedError):
        wait_while_locked(lambda: commit(staged("1.4")), wait_seconds=0.3, poll_seconds=0.05)

    def unlock_soon() -> None:
        time.sleep(0.2)
        index.run(
            lambda uow: uow.image_sets.set_state(
                DS, primary, 2, [ImageSetState.LOCKED], ImageSetState.ACTIVE, ImageSetWorkflowStatus.UPDATED, None, T0
            )
        )

    threading.Thread(target=unlock_soon).start()
    assert wait_while_locked(lambda: commit(staged("1.4")), wait_seconds=5, poll_seconds=0.05) == [(primary, True, 3)]


def test_commit_takes_one_series() -> None:
    other = replace(KEY, series_instance_uid="1.2.3.5")
    with pytest.raises(ValueError, match="one series"):
        MemoryIndex().run(
            lambda uow: commit_staged(uow, MemoryBlobStore(), lambda: T0, DS, [staged("1"), staged("2", other)])
        )
