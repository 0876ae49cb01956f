"""UpdateImageSetMetadata, CopyImageSet, DeleteImageSet with unmodified boto3: the guide's examples and workflows.

Guide 6922-7873 (update examples 1-7 and the two primary workflows), 7874-8585 (copy), 8586-8866 (delete).
Every write answers LOCKED with its workflow status at once and completes in the background.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of, settled, wait_for_status
from tests.e2e.import_helpers import instances, metadata, run_job
from tests.support.dicom_corpus import SeriesSpec, uid, write_series
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IMPORT_WORKERS": "1"})


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture(scope="module")
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName="writes")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


_counter = iter(range(10_000))


def imported(client: Any, datastore: str, tmp_path: Path, **spec: Any) -> tuple[str, SeriesSpec]:
    """Import one synthetic series (unique by default); return its image set id and spec."""
    n = next(_counter)
    series = SeriesSpec(**({"study": f"w{n}", "series": f"s{n}", "slices": 2, "size": 16} | spec))
    folder = tmp_path / f"in{n}"
    write_series(folder, series)
    job = run_job(client, datastore, f"file://{folder}/", f"file://{tmp_path / 'out'}/")
    assert job["jobStatus"] == "COMPLETED"
    success = (tmp_path / "out" / f"{datastore}-DicomImport-{job['jobId']}" / "SUCCESS" / "success.ndjson").read_text()
    return json.loads(success.splitlines()[0])["importResponse"]["imageSetId"], series


def update(client: Any, datastore: str, image_set_id: str, version: str, updates: dict[str, Any], **kw: Any) -> Any:
    return client.update_image_set_metadata(
        datastoreId=datastore,
        imageSetId=image_set_id,
        latestVersionId=version,
        updateImageSetMetadataUpdates=updates,
        **kw,
    )


def patch(document: dict[str, Any]) -> str:
    return json.dumps({"SchemaVersion": 1.1, **document})


def test_update_example_1_insert_or_update_an_attribute(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, _ = imported(client, datastore, tmp_path)
    answer = update(
        client,
        datastore,
        image_set_id,
        "1",
        {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientName": "MX^MX"}}})}},
    )
    assert (answer["latestVersionId"], answer["imageSetState"], answer["imageSetWorkflowStatus"]) == (
        "2",
        "LOCKED",
        "UPDATING",
    )
    assert set(answer) - {"ResponseMetadata"} == {
        "latestVersionId",
        "imageSetWorkflowStatus",
        "updatedAt",
        "imageSetId",
        "imageSetState",
        "createdAt",
        "datastoreId",
    }
    done = settled(client, datastore, image_set_id)
    assert (done["versionId"], done["imageSetState"], done["imageSetWorkflowStatus"]) == ("2", "ACTIVE", "UPDATED")
    assert metadata(client, datastore, image_set_id)["Patient"]["DICOM"]["PatientName"] == "MX^MX"
    assert metadata(client, datastore, image_set_id, "1")["Patient"]["DICOM"]["PatientName"] == "DOE^JANE"


def test_update_example_2_remove_an_attribute_and_4_revert(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, _ = imported(client, datastore, tmp_path)
    removable = patch({"Study": {"DICOM": {"StudyDescription": "Synthetic chest CT"}}})
    update(client, datastore, image_set_id, "1", {"DICOMUpdates": {"removableAttributes": removable}})
    settled(client, datastore, image_set_id)
    assert "StudyDescription" not in metadata(client, datastore, image_set_id)["Study"]["DICOM"]
    update(client, datastore, image_set_id, "2", {"revertToVersionId": "1"})
    assert settled(client, datastore, image_set_id)["versionId"] == "3"
    assert metadata(client, datastore, image_set_id)["Study"]["DICOM"]["StudyDescription"] == "Synthetic chest CT"


def test_update_example_3_remove_an_instance_needs_force(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, spec = imported(client, datastore, tmp_path)
    series, sop = uid(spec.study, spec.series), uid(spec.study, spec.series, 1)
    removable = patch({"Study": {"Series": {series: {"Instances": {sop: {}}}}}})
    update(client, datastore, image_set_id, "1", {"DICOMUpdates": {"removableAttributes": removable}}, force=True)
    settled(client, datastore, image_set_id)
    assert set(instances(metadata(client, datastore, image_set_id))) == {uid(spec.study, spec.series, 0)}


def test_update_examples_5_and_6_private_elements(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, spec = imported(client, datastore, tmp_path)
    series, sop = uid(spec.study, spec.series), uid(spec.study, spec.series, 0)
    added = patch(
        {
            "Study": {
                "Series": {series: {"Instances": {sop: {"DICOM": {"001910F9": "97"}, "DICOMVRs": {"001910F9": "DS"}}}}}
            }
        }
    )
    update(client, datastore, image_set_id, "1", {"DICOMUpdates": {"updatableAttributes": added}}, force=True)
    settled(client, datastore, image_set_id)
    entry = instances(metadata(client, datastore, image_set_id))[sop]
    assert entry["DICOM"]["001910F9"] == "97"
    assert entry["DICOMVRs"]["001910F9"] == "DS"
    changed = patch({"Study": {"Series": {series: {"Instances": {sop: {"DICOM": {"001910F9": "98"}}}}}}})
    update(client, datastore, image_set_id, "2", {"DICOMUpdates": {"updatableAttributes": changed}}, force=True)
    settled(client, datastore, image_set_id)
    assert instances(metadata(client, datastore, image_set_id))[sop]["DICOM"]["001910F9"] == "98"


def test_update_example_7_sop_instance_uid_only_with_force(client: Any, datastore: str, tmp_path: Path) -> None:
    """UIDs change only with force and only on a non-primary image set (guide 6936-6941): work on a copy."""
    primary_id, spec = imported(client, datastore, tmp_path)
    series, sop = uid(spec.study, spec.series), uid(spec.study, spec.series, 0)
    new_uid = sop + ".9"
    instance = {sop: {"DICOM": {"SOPInstanceUID": new_uid}}}
    updates = {"DICOMUpdates": {"updatableAttributes": patch({"Study": {"Series": {series: {"Instances": instance}}}})}}
    code, status, _ = error_of(
        client.update_image_set_metadata,
        datastoreId=datastore,
        imageSetId=primary_id,
        latestVersionId="1",
        updateImageSetMetadataUpdates=updates,
        force=True,
    )
    assert (code, status) == ("ValidationException", 400)  # never on a primary image set
    copy_id = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=primary_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
    )["destinationImageSetProperties"]["imageSetId"]
    settled(client, datastore, copy_id)
    code, status, _ = error_of(
        client.update_image_set_metadata,
        datastoreId=datastore,
        imageSetId=copy_id,
        latestVersionId="1",
        updateImageSetMetadataUpdates=updates,
    )
    assert (code, status) == ("ValidationException", 400)  # not without force
    update(client, datastore, copy_id, "1", updates, force=True)
    assert settled(client, datastore, copy_id)["imageSetWorkflowStatus"] == "UPDATED"
    assert new_uid in instances(metadata(client, datastore, copy_id))


def test_update_conflicts_and_locks(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, _ = imported(client, datastore, tmp_path)
    body = {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientName": "A^B"}}})}}
    code, status, _ = error_of(
        client.update_image_set_metadata,
        datastoreId=datastore,
        imageSetId=image_set_id,
        latestVersionId="7",
        updateImageSetMetadataUpdates=body,
    )
    assert (code, status) == ("ConflictException", 409)

    def attempt(_: int) -> str:
        try:
            update(client, datastore, image_set_id, "1", body)
            return "won"
        except client.exceptions.ConflictException:
            return "conflict"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("won") == 1  # concurrent writers on one image set cannot both win
    settled(client, datastore, image_set_id)


def test_copy_examples_new_subset_and_merge(client: Any, datastore: str, tmp_path: Path) -> None:
    source_id, spec = imported(client, datastore, tmp_path)
    answer = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=source_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
    )
    source_props, destination_props = answer["sourceImageSetProperties"], answer["destinationImageSetProperties"]
    assert source_props["imageSetWorkflowStatus"] == "COPYING_WITH_READ_ONLY_ACCESS"
    assert (
        destination_props["imageSetState"],
        destination_props["imageSetWorkflowStatus"],
        destination_props["latestVersionId"],
    ) == ("LOCKED", "COPYING", "1")
    copy_id = destination_props["imageSetId"]
    assert settled(client, datastore, copy_id)["imageSetWorkflowStatus"] == "COPIED"
    assert settled(client, datastore, copy_id)["isPrimary"] is False
    assert settled(client, datastore, source_id)["imageSetState"] == "ACTIVE"
    assert (
        instances(metadata(client, datastore, copy_id)).keys()
        == instances(metadata(client, datastore, source_id)).keys()
    )

    series, sop = uid(spec.study, spec.series), uid(spec.study, spec.series, 1)
    subset = json.dumps({"SchemaVersion": "1.1", "Study": {"Series": {series: {"Instances": {sop: {}}}}}})
    partial = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=source_id,
        copyImageSetInformation={
            "sourceImageSet": {"latestVersionId": "1", "DICOMCopies": {"copiableAttributes": subset}}
        },
    )["destinationImageSetProperties"]["imageSetId"]
    settled(client, datastore, partial)
    assert set(instances(metadata(client, datastore, partial))) == {sop}

    other_id, _ = imported(client, datastore, tmp_path, study=spec.study, series=spec.series, patient_id="OTHER")
    code, status, _ = error_of(
        client.copy_image_set,
        datastoreId=datastore,
        sourceImageSetId=other_id,
        copyImageSetInformation={
            "sourceImageSet": {"latestVersionId": "1"},
            "destinationImageSet": {"imageSetId": partial, "latestVersionId": "1"},
        },
    )
    assert status in (400, 409), code  # inconsistent metadata without force


def test_delete_and_read_after(client: Any, datastore: str, tmp_path: Path) -> None:
    image_set_id, _ = imported(client, datastore, tmp_path)
    answer = client.delete_image_set(datastoreId=datastore, imageSetId=image_set_id)
    assert (answer["imageSetState"], answer["imageSetWorkflowStatus"]) == ("LOCKED", "DELETING")
    deleted = settled(client, datastore, image_set_id)
    assert (deleted["imageSetState"], deleted["imageSetWorkflowStatus"]) == ("DELETED", "DELETED")
    assert "deletedAt" in deleted
    code, status, _ = error_of(client.get_image_set_metadata, datastoreId=datastore, imageSetId=image_set_id)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, _ = error_of(client.delete_image_set, datastoreId=datastore, imageSetId=image_set_id)
    assert code == "ResourceNotFoundException"


def test_workflow_update_a_primary_image_set(client: Any, datastore: str, tmp_path: Path) -> None:
    """Guide 7766-7820: copy -> update the copy -> delete the primary -> copy with promoteToPrimary -> delete."""
    primary_id, _ = imported(client, datastore, tmp_path)
    copy_id = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=primary_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
    )["destinationImageSetProperties"]["imageSetId"]
    settled(client, datastore, copy_id)
    update(
        client,
        datastore,
        copy_id,
        "1",
        {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientID": "1234"}}})}},
    )
    assert settled(client, datastore, copy_id)["versionId"] == "2"
    client.delete_image_set(datastoreId=datastore, imageSetId=primary_id)
    settled(client, datastore, primary_id)
    promoted = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=copy_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "2"}},
        promoteToPrimary=True,
    )
    new_primary = promoted["destinationImageSetProperties"]["imageSetId"]
    assert settled(client, datastore, new_primary)["isPrimary"] is True
    client.delete_image_set(datastoreId=datastore, imageSetId=copy_id)
    assert settled(client, datastore, copy_id)["imageSetState"] == "DELETED"
    assert metadata(client, datastore, new_primary)["Patient"]["DICOM"]["PatientID"] == "1234"
    assert len(instances(metadata(client, datastore, new_primary))) == 2  # frames still readable after deletes
    document = metadata(client, datastore, new_primary)
    frame = next(iter(instances(document).values()))["ImageFrames"][0]["ID"]
    blob = client.get_image_frame(
        datastoreId=datastore, imageSetId=new_primary, imageFrameInformation={"imageFrameId": frame}
    )
    assert blob["imageFrameBlob"].read()


def test_workflow_promote_a_non_primary_image_set(client: Any, datastore: str, tmp_path: Path) -> None:
    """Guide 7822-7873: resolve the conflict with an update, then copy with promoteToPrimary into the primary."""
    primary_id, spec = imported(client, datastore, tmp_path)
    conflicting_id, _ = imported(
        client,
        datastore,
        tmp_path,
        study=spec.study,
        series=spec.series,
        patient_id="WRONG",
        slices=1,
        first_instance=5,
    )
    assert settled(client, datastore, conflicting_id)["isPrimary"] is False
    update(
        client,
        datastore,
        conflicting_id,
        "1",
        {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientID": spec.patient_id}}})}},
    )
    settled(client, datastore, conflicting_id)
    answer = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=conflicting_id,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "2"}},
        promoteToPrimary=True,
    )
    assert answer["destinationImageSetProperties"]["imageSetId"] == primary_id
    done = settled(client, datastore, primary_id)
    assert (done["versionId"], done["isPrimary"]) == ("2", True)
    assert len(instances(metadata(client, datastore, primary_id))) == 3  # 2 of the primary + 1 promoted
    client.delete_image_set(datastoreId=datastore, imageSetId=conflicting_id)
    settled(client, datastore, conflicting_id)
    assert len(instances(metadata(client, datastore, primary_id))) == 3


def test_a_write_left_locked_by_a_dead_process_is_recovered(make_server: ServerFactory, tmp_path: Path) -> None:
    """A process that died between lock and finish left the image set LOCKED; the next server recovers it."""
    from openhi.imagesets.model import ImageSetState, ImageSetWorkflowStatus
    from openhi.index.sql.adapter import SqlIndex

    server = make_server(env={"OPENHI_IMAGE_SET_LOCK_TIMEOUT_SECONDS": "1", "OPENHI_IMPORT_WORKERS": "1"})
    client = server.client()
    datastore_id = client.create_datastore(datastoreName="recovery")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    image_set_id, _ = imported(client, datastore_id, tmp_path)
    index = SqlIndex.open(server.index_url)
    try:  # what a crash leaves behind: the lock of an update whose background work never ran
        locked = index.run(
            lambda uow: uow.image_sets.set_state(
                datastore_id,
                image_set_id,
                1,
                [ImageSetState.ACTIVE],
                ImageSetState.LOCKED,
                ImageSetWorkflowStatus.UPDATING,
                None,
                datetime.now(UTC) - timedelta(seconds=30),
            )
        )
        assert locked
    finally:
        index.close()
    done = settled(client, datastore_id, image_set_id)
    assert (done["imageSetState"], done["imageSetWorkflowStatus"], done["versionId"]) == (
        "ACTIVE",
        "UPDATE_FAILED",
        "1",
    )
    assert "interrupted" in done["message"]
    assert len(instances(metadata(client, datastore_id, image_set_id))) == 2  # still readable, nothing lost
    body = {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientName": "AFTER^CRASH"}}})}}
    update(client, datastore_id, image_set_id, "1", body)
    assert settled(client, datastore_id, image_set_id)["versionId"] == "2"  # writable again


def test_copy_example_3_force_into_an_inconsistent_destination(client: Any, datastore: str, tmp_path: Path) -> None:
    """Guide 7874-8585 example 3: with force the destination keeps its own Patient/Study/Series elements."""
    destination_id, spec = imported(client, datastore, tmp_path)
    source_id, _ = imported(
        client,
        datastore,
        tmp_path,
        study=spec.study,
        series=spec.series,
        patient_id="OTHER",
        first_instance=7,
        slices=1,
    )
    information = {
        "sourceImageSet": {"latestVersionId": "1"},
        "destinationImageSet": {"imageSetId": destination_id, "latestVersionId": "1"},
    }
    code, _, _ = error_of(
        client.copy_image_set, datastoreId=datastore, sourceImageSetId=source_id, copyImageSetInformation=information
    )
    assert code in ("ValidationException", "ConflictException")  # inconsistent without force
    answer = client.copy_image_set(
        datastoreId=datastore, sourceImageSetId=source_id, copyImageSetInformation=information, force=True
    )
    assert answer["destinationImageSetProperties"]["latestVersionId"] == "2"
    settled(client, datastore, destination_id)
    document = metadata(client, datastore, destination_id)
    assert document["Patient"]["DICOM"]["PatientID"] == spec.patient_id  # the destination keeps its patient
    assert len(instances(document)) == 3


def test_update_include_study_image_sets_is_atomic_across_the_study(
    client: Any, datastore: str, tmp_path: Path
) -> None:
    first_id, spec = imported(client, datastore, tmp_path)
    second_id, _ = imported(client, datastore, tmp_path, study=spec.study, series=f"{spec.series}-b", series_number=2)
    body = {"DICOMUpdates": {"updatableAttributes": patch({"Patient": {"DICOM": {"PatientName": "STUDY^WIDE"}}})}}
    update(client, datastore, first_id, "1", body, includeStudyImageSets=True)
    for image_set_id in (first_id, second_id):
        assert settled(client, datastore, image_set_id)["versionId"] == "2"
        assert metadata(client, datastore, image_set_id)["Patient"]["DICOM"]["PatientName"] == "STUDY^WIDE"
