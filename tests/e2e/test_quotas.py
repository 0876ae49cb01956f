"""Service quotas through boto3 (guide 22730-22776), each configured small so that it is cheap to reach.

Adjustable quotas are settings; beyond one the answer is ServiceQuotaExceededException (402), except the
UpdateImageSetMetadata payload (ValidationException, as a malformed request) and the limits of an import job,
which fail the job (GetDICOMImportJob: FAILED with a message), since StartDICOMImportJob answers before the input
is read. The concurrency quotas of image set writes are set to 0 here to be deterministic (a write finishes in
milliseconds); the per-operation counting itself is covered by tests/contract/test_image_set_write_quotas.py.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of, settled, wait_for_status
from tests.e2e.import_helpers import ROLE, metadata, run_job
from tests.support.dicom_corpus import SeriesSpec, uid, write_series
from tests.support.server import ServerProcess

METADATA_LIMIT = 3200  # a two-instance image set of the synthetic corpus is ~2,850 bytes of JSON
PAYLOAD_LIMIT = 1000
ENV = {
    "OPENHI_IMPORT_WORKERS": "1",
    "OPENHI_MAX_ACTIVE_DATASTORES": "2",
    "OPENHI_MAX_CONCURRENT_IMPORT_JOBS": "1",
    "OPENHI_MAX_CONCURRENT_IMAGE_SET_UPDATES": "0",
    "OPENHI_MAX_CONCURRENT_IMAGE_SET_DELETES": "0",
    "OPENHI_MAX_FRAMES_PER_COPY": "1",
    "OPENHI_MAX_UPDATE_PAYLOAD_BYTES": str(PAYLOAD_LIMIT),
    "OPENHI_MAX_IMAGE_SET_METADATA_BYTES": str(METADATA_LIMIT),
    "OPENHI_MAX_IMPORT_FILES": "2",
}


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env=ENV)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture(scope="module")
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName="quotas")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quota-inputs")


def _import(client: Any, datastore: str, work: Path, spec: SeriesSpec) -> dict[str, Any]:
    folder = work / uuid.uuid4().hex
    write_series(folder, spec)
    return run_job(client, datastore, f"file://{folder}/", f"file://{work / 'out'}/")


def _image_set_id(work: Path, datastore: str, job: dict[str, Any]) -> str:
    assert job["jobStatus"] == "COMPLETED", job
    success = work / "out" / f"{datastore}-DicomImport-{job['jobId']}" / "SUCCESS" / "success.ndjson"
    image_set_id: str = json.loads(success.read_text().splitlines()[0])["importResponse"]["imageSetId"]
    return image_set_id


@pytest.fixture(scope="module")
def image_sets(client: Any, datastore: str, work: Path) -> dict[str, tuple[str, SeriesSpec]]:
    """Two primary image sets of two instances (one frame each), below the metadata quota."""
    made = {}
    for name in ("a", "b"):
        spec = SeriesSpec(study=f"quota-{name}", series=f"s-{name}", patient_id=f"P-{name}", slices=2, size=16)
        made[name] = (_image_set_id(work, datastore, _import(client, datastore, work, spec)), spec)
    return made


def _size(client: Any, datastore: str, image_set_id: str) -> int:
    return len(json.dumps(metadata(client, datastore, image_set_id), separators=(",", ":")).encode())


def test_active_data_stores(client: Any, datastore: str) -> None:
    client.create_datastore(datastoreName="second")
    code, status, message = error_of(client.create_datastore, datastoreName="third")
    assert (code, status) == ("ServiceQuotaExceededException", 402), message


def test_concurrent_import_jobs(client: Any, datastore: str, work: Path) -> None:
    folder = work / "two-files"
    write_series(folder, SeriesSpec(study="quota-jobs", slices=2, size=16))
    first = client.start_dicom_import_job(
        datastoreId=datastore,
        dataAccessRoleArn=ROLE,
        clientToken=uuid.uuid4().hex,
        inputS3Uri=f"file://{folder}/",
        outputS3Uri=f"file://{work / 'out'}/",
    )
    code, status, message = error_of(
        client.start_dicom_import_job,
        datastoreId=datastore,
        dataAccessRoleArn=ROLE,
        clientToken=uuid.uuid4().hex,
        inputS3Uri=f"file://{folder}/",
        outputS3Uri=f"file://{work / 'out'}/",
    )
    assert (code, status) == ("ServiceQuotaExceededException", 402), message  # the first is still running
    for _ in range(300):
        job = client.get_dicom_import_job(datastoreId=datastore, jobId=first["jobId"])["jobProperties"]
        if job["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    assert job["jobStatus"] == "COMPLETED"


def test_files_per_import_job(client: Any, datastore: str, work: Path) -> None:
    job = _import(client, datastore, work, SeriesSpec(study="quota-files", slices=3, size=16))
    assert job["jobStatus"] == "FAILED"
    assert "more than 2 files" in job["message"]


def test_image_set_metadata_size_for_an_import(
    client: Any, datastore: str, work: Path, image_sets: dict[str, tuple[str, SeriesSpec]]
) -> None:
    """A third instance joins image set a's series: its metadata would pass the limit, so the job fails."""
    image_set_id, spec = image_sets["a"]
    before = client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)["versionId"]
    job = _import(client, datastore, work, SeriesSpec(**{**vars(spec), "slices": 1, "first_instance": 2}))
    assert job["jobStatus"] == "FAILED"
    assert f"more than the {METADATA_LIMIT} bytes" in job["message"]
    assert client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)["versionId"] == before


def test_frames_per_copy_and_metadata_size_for_a_copy(
    client: Any, datastore: str, image_sets: dict[str, tuple[str, SeriesSpec]]
) -> None:
    (source, spec), (destination, _) = image_sets["a"], image_sets["b"]
    code, status, message = error_of(
        client.copy_image_set,
        datastoreId=datastore,
        sourceImageSetId=source,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}},
    )
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert "copies 2 image frames; at most 1" in message
    one = json.dumps(
        {
            "SchemaVersion": "1.1",
            "Study": {"Series": {uid(spec.study, spec.series): {"Instances": {uid(spec.study, spec.series, 0): {}}}}},
        }
    )
    selection = {"latestVersionId": "1", "DICOMCopies": {"copiableAttributes": one}}
    code, status, message = error_of(
        client.copy_image_set,
        datastoreId=datastore,
        sourceImageSetId=source,
        copyImageSetInformation={
            "sourceImageSet": selection,
            "destinationImageSet": {"imageSetId": destination, "latestVersionId": "1"},
        },
        force=True,
    )
    assert (code, status) == ("ServiceQuotaExceededException", 402)  # three instances: past the metadata limit
    assert f"more than the {METADATA_LIMIT} bytes" in message
    copied = client.copy_image_set(  # one frame into a new image set: within both; copies are not at quota 0
        datastoreId=datastore, sourceImageSetId=source, copyImageSetInformation={"sourceImageSet": selection}
    )["destinationImageSetProperties"]["imageSetId"]
    assert settled(client, datastore, copied)["imageSetWorkflowStatus"] == "COPIED"
    settled(client, datastore, source)


def _update(client: Any, datastore: str, image_set_id: str, comments: str) -> tuple[str, int, str]:
    patch = json.dumps({"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientComments": comments}}})
    return error_of(
        client.update_image_set_metadata,
        datastoreId=datastore,
        imageSetId=image_set_id,
        latestVersionId="1",
        updateImageSetMetadataUpdates={"DICOMUpdates": {"updatableAttributes": patch}},
    )


def test_update_payload_metadata_size_and_concurrency(
    client: Any, datastore: str, image_sets: dict[str, tuple[str, SeriesSpec]]
) -> None:
    image_set_id = image_sets["b"][0]
    code, status, message = _update(client, datastore, image_set_id, "x" * PAYLOAD_LIMIT)
    assert (code, status) == ("ValidationException", 400)
    assert f"more than the {PAYLOAD_LIMIT} bytes" in message
    grow = METADATA_LIMIT - _size(client, datastore, image_set_id) + 10
    assert 0 < grow < PAYLOAD_LIMIT - 100
    code, status, message = _update(client, datastore, image_set_id, "x" * grow)
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert f"more than the {METADATA_LIMIT} bytes" in message
    code, status, message = _update(client, datastore, image_set_id, "small")  # valid: meets the 0 in flight
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert "0 UpdateImageSetMetadata requests in progress" in message


def test_concurrent_deletes(client: Any, datastore: str, image_sets: dict[str, tuple[str, SeriesSpec]]) -> None:
    code, status, message = error_of(client.delete_image_set, datastoreId=datastore, imageSetId=image_sets["b"][0])
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert "0 DeleteImageSet requests in progress" in message
    assert client.get_image_set(datastoreId=datastore, imageSetId=image_sets["b"][0])["imageSetState"] == "ACTIVE"
