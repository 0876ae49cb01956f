"""The import runner on in-memory adapters with a thread pool: outcomes, commits, outputs, limits, resume."""

from __future__ import annotations

import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tests.support.dicom_corpus import SeriesSpec, ct_dataset

from openhi.blobs.memory import MemoryBlobStore
from openhi.blobs.port import BlobStore
from openhi.datastores.model import DatastoreStatus, LosslessStorageFormat
from openhi.datastores.service import CreateDatastoreRequest, DatastoreService
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
            task_fn=lambda task: import_file(task, self.open),
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
        data = self.open("file:///out/").get(
            f"{self.datastore_id}-DicomImport-{job_id}/job-output-manifest.json"
        )
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
    [(image_set_id, count)] = [
        (s["imageSetId"], s["numberOfMatchedSOPInstances"]) for s in summary["imageSetsSummary"]
    ]  # type: ignore[attr-defined]
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


def test_start_is_idempotent_per_client_token() -> None:
    world = World()
    request = StartImportRequest(world.datastore_id, "same-token", ROLE, "file:///in/", "file:///out/")
    assert world.imports.start(request).job_id == world.imports.start(request).job_id
