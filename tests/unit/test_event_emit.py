"""Which changes append an event, in the unit of work of the change: each state change once, never a re-run of an
idempotent step, a lease renewal or a compare-and-set that lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicom.normalize import GroupingKey
from openhi.events import emit
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.imports.model import ImportJob, JobStatus
from openhi.index.memory import MemoryImageSet, MemoryIndex
from openhi.index.port import UnitOfWork

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DS = "d" * 32
KEY = GroupingKey(None, None, None, None, None, None, None)


def appended(index: MemoryIndex) -> list[tuple[str, dict[str, object], str | None]]:
    return [(event.detail_type, dict(event.detail), event.source_image_set_id) for event, _ in index.state.events]


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


def image_set(index: MemoryIndex, image_set_id: str) -> ImageSet:
    index.state.image_sets[(DS, image_set_id)] = MemoryImageSet(created_at=T0, updated_at=T0)
    found = index.run(lambda uow: uow.image_sets.get(DS, image_set_id))
    assert found is not None
    return found


def test_locks_report_the_lock_and_the_unlock_that_happened(index: MemoryIndex) -> None:
    locks = Locks(index, lambda: T0 + timedelta(seconds=1), ThreadPoolExecutor(1))
    source, destination = image_set(index, "a" * 32), image_set(index, "b" * 32)

    def copy(uow: UnitOfWork) -> tuple[ImageSet, ImageSet]:
        read_only = locks.lock(uow, source, 1, ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS)
        copying = locks.lock(
            uow, destination, 1, ImageSetWorkflowStatus.COPYING, source_image_set_id=source.image_set_id
        )
        return read_only, copying

    read_only, copying = index.run(copy)
    index.run(lambda uow: locks.unlock(uow, copying, ImageSetWorkflowStatus.COPY_FAILED, "boom"))
    index.run(lambda uow: locks.unlock(uow, copying, ImageSetWorkflowStatus.COPY_FAILED, "again"))  # not locked
    index.run(lambda uow: locks.unlock(uow, read_only, ImageSetWorkflowStatus.COPY_FAILED, "boom"))
    assert [
        (kind, detail["imagesetId"], detail["imageSetState"], source_id) for kind, detail, source_id in appended(index)
    ] == [
        ("Image Set Copying With Read Only Access", "a" * 32, "LOCKED", None),
        ("Image Set Copying", "b" * 32, "LOCKED", "a" * 32),
        ("Image Set Copy Failed", "b" * 32, "ACTIVE", None),
        ("Image Set Copy Failed", "a" * 32, "ACTIVE", None),
    ]
    assert {event.time for event, _ in index.state.events} == {T0 + timedelta(seconds=1)}


def test_a_refused_lock_appends_nothing(index: MemoryIndex) -> None:
    locks = Locks(index, lambda: T0, ThreadPoolExecutor(1))
    target = image_set(index, "a" * 32)
    with pytest.raises(Exception, match="latest version"):
        index.run(lambda uow: locks.lock(uow, target, 7, ImageSetWorkflowStatus.UPDATING))
    assert appended(index) == []


def test_replacing_an_image_set_row_reports_only_a_change_of_state(index: MemoryIndex) -> None:
    row = image_set(index, "a" * 32)
    deleted = replace(row, state=ImageSetState.DELETED, workflow_status=ImageSetWorkflowStatus.DELETED)
    index.run(lambda uow: emit.replace_image_set(uow, row, deleted))
    index.run(lambda uow: emit.replace_image_set(uow, deleted, deleted))  # the idempotent delete, re-run
    assert [kind for kind, _, _ in appended(index)] == ["Image Set Deleted"]


def test_a_version_written_for_a_lock_is_left_to_the_lock(index: MemoryIndex) -> None:
    row = image_set(index, "a" * 32)

    def write(uow: UnitOfWork) -> None:
        for workflow in ImageSetWorkflowStatus:
            emit.version_written(uow, replace(row, workflow_status=workflow))

    index.run(write)
    assert [kind for kind, _, _ in appended(index)] == [
        "Image Set Created",
        "Image Set Copied",
        "Image Set Copy Failed",
        "Image Set Updated",
        "Image Set Update Failed",
        "Image Set Deleted",
    ]


def test_import_job_rows_report_status_changes_only(index: MemoryIndex) -> None:
    datastore = Datastore(DS, "store", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "token")
    job = ImportJob("j" * 32, DS, "job", JobStatus.SUBMITTED, "arn:role", "s3://in/", "s3://out/", "t", T0, T0)

    def start(uow: UnitOfWork) -> None:
        uow.datastores.add(datastore)
        uow.import_jobs.add(job)
        emit.import_job_changed(uow, None, job)

    index.run(start)
    running = replace(job, status=JobStatus.IN_PROGRESS, updated_at=T0 + timedelta(seconds=1))
    index.run(lambda uow: emit.save_import_job(uow, running))
    index.run(lambda uow: emit.save_import_job(uow, replace(running, lease_owner="me")))  # a lease renewal
    index.run(lambda uow: emit.save_import_job(uow, replace(running, status=JobStatus.COMPLETED)))
    assert [(kind, detail["jobStatus"]) for kind, detail, _ in appended(index)] == [
        ("Import Job Submitted", "SUBMITTED"),
        ("Import Job In Progress", "IN_PROGRESS"),
        ("Import Job Completed", "COMPLETED"),
    ]


def test_data_store_transitions_report_only_the_one_that_moved(index: MemoryIndex) -> None:
    datastore = Datastore(DS, "store", DatastoreStatus.CREATING, LosslessStorageFormat.HTJ2K, T0, T0, "token")
    index.run(lambda uow: uow.datastores.add(datastore))
    later = T0 + timedelta(seconds=5)
    moves = [
        index.run(
            lambda uow: emit.transition_datastore(
                uow, datastore, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, later
            )
        )
        for _ in range(2)  # two processes sweeping at once: one wins
    ]
    assert moves == [True, False]
    [(event, sequence)] = index.state.events
    assert (event.detail_type, event.detail["datastoreStatus"], event.time, sequence) == (
        "Data Store Created",
        "ACTIVE",
        later,
        None,
    )
