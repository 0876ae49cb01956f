"""The import runner on in-memory adapters with a thread pool: outcomes, commits, outputs, limits, resume."""

from __future__ import annotations

import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from tests.support.dicom_corpus import SeriesSpec, ct_dataset

from openhi.blobs.memory import MemoryBlobStore
from openhi.blobs.port import BlobStore
from openhi.datastores.model import DatastoreStatus, LosslessStorageFormat
from openhi.datastores.service import CreateDatastoreRequest, DatastoreService
from openhi.errors import QuotaExceededError
from openhi.imagesets import document
from openhi.imports.model import FileStatus, JobStatus
from openhi.imports.pipeline import FileTask, import_file
from openhi.imports.runner import ImportLimits, ImportRunner
from openhi.imports.service import ImportService, StartImportRequest
from openhi.index.memory import MemoryIndex
from openhi.search.tokens import TokenCodec

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


class World:
    def __init__(self, limits: ImportLimits | None = None) -> None:
        self.index = MemoryIndex()
        self.stores: dict[str, BlobStore] = {"memory://blobs": MemoryBlobStore()}
        self.clock = lambda: datetime.now(UTC)
        tokens = TokenCodec(b"k")
        self.imports = ImportService(self.index, self.clock, tokens)
        self.runner = ImportRunner(
            self.index,
            self.stores["memory://blobs"],
            "memory://blobs",
            open_input=self.open,
            open_output=self.open,
            executor=lambda: ThreadPoolExecutor(2),
            task_fn=lambda tasks: [import_file(task, self.open) for task in tasks],
            clock=self.clock,
            limits=limits or ImportLimits(),
        )
        datastores = DatastoreService(self.index, self.clock, tokens, 10)
        self.datastore_id = datastores.create(CreateDatastoreRequest(client_token="t")).datastore_id
        self.index.run(
            lambda uow: uow.datastores.transition(
                self.datastore_id, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, self.clock()
            )
        )

    def open(self, url: str) -> BlobStore:
        return self.stores.setdefault(url, MemoryBlobStore())

    def put_series(self, url: str, spec: SeriesSpec, prefix: str = "") -> None:
        for index in range(spec.slices):
            buffer = io.BytesIO()
            ct_dataset(spec, index).save_as(buffer, enforce_file_format=True)
            self.open(url).put(f"{prefix}{spec.series}/{index}.dcm", buffer.getvalue())

    def start(self, input_url: str) -> str:
        job = self.imports.start(
            StartImportRequest(self.datastore_id, uuid.uuid4().hex, ROLE, input_url, "file:///out/")
        )
        return job.job_id

    def manifest(self, job_id: str) -> dict[str, object]:
        data = self.open("file:///out/").get(f"{self.datastore_id}-DicomImport-{job_id}/job-output-manifest.json")
        summary: dict[str, object] = json.loads(data)["jobSummary"]
        return summary


def test_a_job_runs_to_completed_and_writes_its_outputs() -> None:
    world = World()
    world.put_series("file:///in/", SeriesSpec(slices=3, size=32))
    world.open("file:///in/").put("junk.bin", b"definitely not DICOM")
    job_id = world.start("file:///in/")
    seen = []
    job = world.runner.run_now(world.datastore_id, job_id, seen.append)
    assert job.status == JobStatus.COMPLETED
    assert len(seen) == 4
    summary = world.manifest(job_id)
    assert (summary["numberOfScannedFiles"], summary["numberOfImportedFiles"]) == (4, 3)
    assert summary["numberOfFilesWithCustomerError"] == 1
    out = world.open("file:///out/")
    failure = out.get(f"{world.datastore_id}-DicomImport-{job_id}/FAILURE/failure.ndjson").decode()
    assert "junk.bin" in failure
    [(image_set_id, count)] = [(s["imageSetId"], s["numberOfMatchedSOPInstances"]) for s in summary["imageSetsSummary"]]  # type: ignore[attr-defined]
    assert count == 3
    version = world.index.run(lambda uow: uow.image_sets.get_version(world.datastore_id, image_set_id, 1))
    assert version is not None
    doc = document.decode(world.stores["memory://blobs"].get(version.metadata_key))
    assert document.instance_count(doc) == 3
    assert len(document.frame_ids(doc)) == 3


def test_staged_files_are_not_processed_again_and_groups_commit_once() -> None:
    world = World()
    world.put_series("file:///in/", SeriesSpec(slices=2, size=32))
    job_id = world.start("file:///in/")
    world.runner.run_now(world.datastore_id, job_id)
    files = world.index.run(lambda uow: uow.import_jobs.list_files(job_id))
    assert {f.status for f in files} == {FileStatus.STAGED}
    # Re-running a finished job changes nothing (no new version, no new image set).
    world.runner.run_now(world.datastore_id, job_id)
    summary = world.manifest(job_id)
    assert summary["numberOfGeneratedImageSets"] == 1


def test_limits_fail_the_job_with_a_clear_message() -> None:
    world = World(ImportLimits(max_files=2))
    world.put_series("file:///in/", SeriesSpec(slices=3, size=16))
    job = world.runner.run_now(world.datastore_id, world.start("file:///in/"))
    assert job.status == JobStatus.FAILED
    assert job.message is not None
    assert "2 files" in job.message


def test_the_worker_reports_failures_as_data() -> None:
    world = World()
    world.open("file:///in/").put("truncated.dcm", b"\0" * 128 + b"DICM" + b"\x02\x00")
    task = FileTask(
        "j" * 32,
        world.datastore_id,
        0,
        "truncated.dcm",
        "file:///in/",
        "memory://blobs",
        LosslessStorageFormat.HTJ2K,
    )
    outcome = import_file(task, world.open)
    assert outcome.staged is None
    assert outcome.error_type == "ValidationException"
    assert outcome.error_message
    assert "truncated.dcm" in outcome.error_message
    assert "/tmp/" not in outcome.error_message  # the worker's temporary copy is never named


def test_start_is_idempotent_per_client_token() -> None:
    world = World()
    request = StartImportRequest(world.datastore_id, "same-token", ROLE, "file:///in/", "file:///out/")
    assert world.imports.start(request).job_id == world.imports.start(request).job_id


def test_json_metadata_mappings_override_elements_and_are_not_imported() -> None:
    world = World()
    spec = SeriesSpec(slices=2, size=16)
    world.put_series("file:///in/", spec)
    override = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "RENAMED^PATIENT"}]}}
    world.open("file:///in/").put("meta/override.json", json.dumps(override).encode())
    from tests.support.dicom_corpus import uid

    configuration = {
        "dicomJsonMetadataImportConfiguration": {
            "dicomMetadataMappings": [{"studyInstanceUID": uid(spec.study), "metadataFilePath": "meta/override.json"}]
        }
    }
    job = world.imports.start(
        StartImportRequest(
            world.datastore_id,
            "mapped",
            ROLE,
            "file:///in/",
            "file:///out/",
            import_configuration=json.dumps(configuration),
        )
    )
    done = world.runner.run_now(world.datastore_id, job.job_id)
    assert done.status == JobStatus.COMPLETED
    summary = world.manifest(job.job_id)
    assert summary["numberOfScannedFiles"] == 2  # the mapping file is not an input file
    [entry] = summary["imageSetsSummary"]  # type: ignore[misc]
    image_set = world.index.run(lambda uow: uow.image_sets.get(world.datastore_id, entry["imageSetId"]))
    assert image_set is not None
    version = world.index.run(lambda uow: uow.image_sets.get_version(world.datastore_id, image_set.image_set_id, 1))
    assert version is not None
    doc = document.decode(world.stores["memory://blobs"].get(version.metadata_key))
    assert doc["Patient"]["DICOM"]["PatientName"] == "RENAMED^PATIENT"
    warnings = world.open("file:///out/").get(f"{world.datastore_id}-DicomImport-{job.job_id}/WARNING/warning.ndjson")
    assert b"45056" in warnings


def test_a_missing_mapping_file_fails_the_job() -> None:
    world = World()
    configuration = {
        "dicomJsonMetadataImportConfiguration": {
            "dicomMetadataMappings": [{"studyInstanceUID": "1.2.3", "metadataFilePath": "nowhere.json"}]
        }
    }
    job = world.imports.start(
        StartImportRequest(
            world.datastore_id,
            "x",
            ROLE,
            "file:///in/",
            "file:///out/",
            import_configuration=json.dumps(configuration),
        )
    )
    done = world.runner.run_now(world.datastore_id, job.job_id)
    assert done.status == JobStatus.FAILED
    assert "nowhere.json" in (done.message or "")


def test_bulk_values_over_the_threshold_are_stored_apart() -> None:
    world = World()
    spec = SeriesSpec(slices=1, size=16)
    ds = ct_dataset(spec, 0)
    ds.add_new(0x00091010, "LO", "OPENHI TEST")
    ds.add_new(0x00091001, "OB", bytes(range(256)) * 5000)  # 1.28 MB private binary value
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    world.open("file:///in/").put("big.dcm", buffer.getvalue())
    job_id = world.start("file:///in/")
    assert world.runner.run_now(world.datastore_id, job_id).status == JobStatus.COMPLETED
    blobs = world.stores["memory://blobs"]
    bulk = list(blobs.iter_prefix(f"datastores/{world.datastore_id}/bulk/"))
    assert len(bulk) == 1
    assert blobs.get(bulk[0]) == bytes(range(256)) * 5000


def test_warnings_reach_the_metadata_and_warning_ndjson() -> None:
    world = World()
    ds = ct_dataset(SeriesSpec(slices=1, size=16), 0)
    ds.StudyDescription = "x" * 300  # over the 256 limit of guide 22620-22643: kept, with 0xB202
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    world.open("file:///in/").put("long.dcm", buffer.getvalue())
    job_id = world.start("file:///in/")
    world.runner.run_now(world.datastore_id, job_id)
    lines = world.open("file:///out/").get(f"{world.datastore_id}-DicomImport-{job_id}/WARNING/warning.ndjson")
    [line] = [json.loads(text) for text in lines.decode().splitlines()]
    response = line["importResponse"]
    assert response["imageSetVersion"] == 1
    assert response["isPrimary"] is True
    assert {w["warning_reason_code"] for w in response["warnings"]} == {45571}


def test_concurrent_jobs_per_datastore_are_limited() -> None:
    world = World()
    limited = ImportService(world.index, world.clock, TokenCodec(b"k"), max_concurrent_jobs=1)
    limited.start(StartImportRequest(world.datastore_id, "one", ROLE, "file:///in/", "file:///out/"))
    with pytest.raises(QuotaExceededError):
        limited.start(StartImportRequest(world.datastore_id, "two", ROLE, "file:///in/", "file:///out/"))


def test_frames_that_stop_being_delimitable_leave_no_partial_frame_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """0xB110-0xB112 (guide 22881-22912): no frame list at all, and the frames written before are removed."""
    from openhi.codecs.errors import FrameCountMismatchError
    from openhi.imagesets.staged import StagedInstance
    from openhi.imports import pipeline

    real = pipeline.iter_frame_payloads

    def one_then_fail(ds: object) -> object:
        payloads = real(ds)  # type: ignore[arg-type]
        yield next(payloads)
        raise FrameCountMismatchError("fragments do not match NumberOfFrames")

    monkeypatch.setattr(pipeline, "iter_frame_payloads", one_then_fail)
    world = World()
    world.put_series("file:///in/", SeriesSpec(slices=1))
    task = FileTask(
        "j" * 32, world.datastore_id, 0, "series-1/0.dcm", "file:///in/", "memory://blobs", LosslessStorageFormat.HTJ2K
    )
    outcome = import_file(task, world.open)
    assert outcome.staged is not None
    staged = StagedInstance.from_bytes(outcome.staged)
    assert staged.image_frames == []
    assert staged.stored_transfer_syntax == "1.2.840.10008.1.2.1"
    assert len(staged.warnings) == 1
    assert "fragments do not match" in str(staged.warnings[0])
    assert list(world.open("memory://blobs").iter_prefix(f"{world.datastore_id}/")) == []
