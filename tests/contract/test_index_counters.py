"""Counters of the resource metrics (``CounterRepository``) on memory, SQLite and PostgreSQL.

The counters are kept by the repository methods that change the counted rows, so these tests drive the index only
through the write path the services use (``imagesets.versions.write_version`` + ``add_frames`` for an import
commit, the steps of ``ImageSetCopies._finish`` and ``ImageSetDeletes.release``) and check the counters against
what the rows say: exact values after each step, unchanged after a rolled-back unit of work, and equal to
``recount`` after a seeded random workload.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.contract.conftest import T0, Backend
from tests.support.counter_workload import commit, copy_frames, delete, random_workload, summary, usage

from openhi.datastores.model import DatastoreStatus
from openhi.ids import new_id
from openhi.imagesets.model import FrameRef, ImageSetState, ImageSetWorkflowStatus
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.index.port import Index, UnitOfWork
from openhi.metrics.usage import ARCHIVE_INSTANT_ACCESS, FREQUENT_ACCESS, SMALL_IMAGE_SET_BYTES, ImportProgress

NewDatastore = Callable[[], str]


# -- data stores ---------------------------------------------------------------------------------------------


def test_a_data_store_counts_in_its_status_and_follows_its_transitions(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id = new_datastore()  # ACTIVE
    assert usage(index, datastore_id).status == "ACTIVE"
    assert index.run(
        lambda uow: uow.datastores.transition(datastore_id, DatastoreStatus.ACTIVE, DatastoreStatus.DELETING, T0)
    )
    assert usage(index, datastore_id).status == "DELETING"
    # A compare-and-set that does not apply changes nothing.
    assert not index.run(
        lambda uow: uow.datastores.transition(datastore_id, DatastoreStatus.ACTIVE, DatastoreStatus.DELETED, T0)
    )
    assert usage(index, datastore_id).status == "DELETING"
    assert index.run(
        lambda uow: uow.datastores.transition(datastore_id, DatastoreStatus.DELETING, DatastoreStatus.DELETED, T0)
    )
    assert summary(usage(index, datastore_id))["status"] == "DELETED"


# -- image sets, frames, catalog -----------------------------------------------------------------------------------


def test_an_import_commit_counts_image_sets_bytes_and_dicom_resources(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id = new_datastore()
    first, second = new_id(), new_id()
    index.run(lambda uow: commit(uow, datastore_id, first, "1.2.3.1", instances=2, frame_sizes=[100, 200]))
    index.run(lambda uow: commit(uow, datastore_id, second, "1.2.3.2", instances=3, frame_sizes=[300, 400, 500]))
    assert summary(usage(index, datastore_id)) == {
        "status": "ACTIVE",
        "image_sets": 2,
        "primary": 2,
        "small": 2,
        "bytes": {FREQUENT_ACCESS: 1500, ARCHIVE_INSTANT_ACCESS: 0},
        "studies": 1,  # both series are of one study
        "series": 2,
        "instances": 5,
    }
    assert usage(index, datastore_id).structured_storage_bytes == 1024 + 2 * 830 + 5 * 680


def test_frames_added_twice_count_once_and_a_large_image_set_is_not_small(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id, image_set_id = new_datastore(), new_id()
    frames = index.run(lambda uow: commit(uow, datastore_id, image_set_id, "1.2.3", instances=1, frame_sizes=[10]))
    twice = [*frames, *frames]  # already stored, and twice in one call
    index.run(lambda uow: uow.image_sets.add_frames(twice))
    assert usage(index, datastore_id).storage_bytes[FREQUENT_ACCESS] == 10
    big = FrameRef(datastore_id, image_set_id, "f" * 32, "1.2.840.10008.1.2.1", SMALL_IMAGE_SET_BYTES)
    index.run(lambda uow: uow.image_sets.add_frames([big, big]))
    found = usage(index, datastore_id)
    assert (found.small_image_sets, found.storage_bytes[FREQUENT_ACCESS]) == (0, SMALL_IMAGE_SET_BYTES + 10)


def test_a_new_version_replaces_the_catalog_counts_and_keeps_the_image_set_count(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id, image_set_id = new_datastore(), new_id()
    index.run(lambda uow: commit(uow, datastore_id, image_set_id, "1.2.3", instances=4, frame_sizes=[1] * 4))
    index.run(lambda uow: commit(uow, datastore_id, image_set_id, "1.2.3", instances=2, frame_sizes=[], version_id=2))
    found = usage(index, datastore_id)
    assert (found.image_sets, found.series, found.instances, found.studies) == (1, 1, 2, 1)


def test_a_non_primary_image_set_counts_but_has_no_dicom_resources(index: Index, new_datastore: NewDatastore) -> None:
    datastore_id = new_datastore()
    index.run(lambda uow: commit(uow, datastore_id, new_id(), "1.2.3", instances=2, frame_sizes=[5], primary=False))
    found = usage(index, datastore_id)
    assert (found.image_sets, found.primary_image_sets, found.studies, found.instances) == (1, 0, 0, 0)
    assert found.storage_bytes[FREQUENT_ACCESS] == 5


def test_lock_and_unlock_change_nothing_and_delete_takes_everything_back(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id, kept, deleted = new_datastore(), new_id(), new_id()
    index.run(lambda uow: commit(uow, datastore_id, kept, "1.2.3.1", instances=1, frame_sizes=[7]))
    index.run(lambda uow: commit(uow, datastore_id, deleted, "1.2.3.2", instances=2, frame_sizes=[11, 13]))
    before = summary(usage(index, datastore_id))
    active, locked = [ImageSetState.ACTIVE], [ImageSetState.LOCKED]
    deleting = ImageSetWorkflowStatus.DELETING
    assert index.run(
        lambda uow: uow.image_sets.set_state(datastore_id, deleted, 1, active, ImageSetState.LOCKED, deleting, None, T0)
    )
    assert summary(usage(index, datastore_id)) == before
    index.run(lambda uow: delete(uow, datastore_id, deleted))
    assert summary(usage(index, datastore_id)) == {
        **before,
        "image_sets": 1,
        "primary": 1,
        "small": 1,
        "bytes": {FREQUENT_ACCESS: 7, ARCHIVE_INSTANT_ACCESS: 0},
        "series": 1,
        "instances": 1,
    }
    # Deleting the last image set of the study removes the study.
    assert index.run(
        lambda uow: uow.image_sets.set_state(datastore_id, kept, 1, active, ImageSetState.LOCKED, deleting, None, T0)
    )
    index.run(lambda uow: delete(uow, datastore_id, kept))
    assert summary(usage(index, datastore_id))["studies"] == 0
    assert summary(usage(index, datastore_id))["bytes"] == {FREQUENT_ACCESS: 0, ARCHIVE_INSTANT_ACCESS: 0}
    # set_state out of DELETED (not a flow of the services, but the counters follow the row).
    assert index.run(
        lambda uow: uow.image_sets.set_state(
            datastore_id, kept, 1, [ImageSetState.DELETED, *locked], ImageSetState.ACTIVE, deleting, None, T0
        )
    )
    assert usage(index, datastore_id).image_sets == 1


def test_a_copy_counts_the_shared_frames_again_until_one_side_is_deleted(
    index: Index, new_datastore: NewDatastore
) -> None:
    datastore_id, source, destination = new_datastore(), new_id(), new_id()
    index.run(lambda uow: commit(uow, datastore_id, source, "1.2.3", instances=2, frame_sizes=[40, 60]))

    def copy(uow: UnitOfWork) -> None:  # a new, non-primary destination, then the source's frames
        commit(uow, datastore_id, destination, "1.2.3", instances=2, frame_sizes=[], primary=False)
        copy_frames(uow, datastore_id, source, destination)

    index.run(copy)
    found = usage(index, datastore_id)
    assert (found.image_sets, found.primary_image_sets, found.storage_bytes[FREQUENT_ACCESS]) == (2, 1, 200)
    assert (found.series, found.instances) == (1, 2)  # the non-primary copy is not in the catalog
    index.run(lambda uow: delete(uow, datastore_id, source))
    found = usage(index, datastore_id)
    assert (found.image_sets, found.primary_image_sets, found.storage_bytes[FREQUENT_ACCESS]) == (1, 0, 100)
    assert (found.studies, found.series, found.instances) == (0, 0, 0)


def test_a_failed_unit_of_work_leaves_the_counters_as_they_were(index: Index, new_datastore: NewDatastore) -> None:
    datastore_id = new_datastore()
    before = summary(usage(index, datastore_id))

    def fails(uow: UnitOfWork) -> None:
        commit(uow, datastore_id, new_id(), "1.2.3", instances=3, frame_sizes=[1, 2, 3])
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        index.run(fails)
    assert summary(usage(index, datastore_id)) == before


def test_counters_of_one_data_store_do_not_leak_into_another(index: Index, new_datastore: NewDatastore) -> None:
    one, other = new_datastore(), new_datastore()
    index.run(lambda uow: commit(uow, one, new_id(), "1.2.3", instances=1, frame_sizes=[9]))
    assert usage(index, other).image_sets == 0
    assert usage(index, one).image_sets == 1


# -- storage tiers -------------------------------------------------------------------------------------------------


def test_move_tier_moves_the_bytes_of_the_image_set(index: Index, new_datastore: NewDatastore) -> None:
    datastore_id, image_set_id = new_datastore(), new_id()
    index.run(lambda uow: commit(uow, datastore_id, image_set_id, "1.2.3", instances=1, frame_sizes=[70, 30]))
    assert index.run(lambda uow: uow.counters.move_tier(datastore_id, image_set_id, ARCHIVE_INSTANT_ACCESS))
    assert usage(index, datastore_id).storage_bytes == {FREQUENT_ACCESS: 0, ARCHIVE_INSTANT_ACCESS: 100}
    assert not index.run(lambda uow: uow.counters.move_tier(datastore_id, image_set_id, ARCHIVE_INSTANT_ACCESS))
    assert not index.run(lambda uow: uow.counters.move_tier(datastore_id, new_id(), FREQUENT_ACCESS))
    with pytest.raises(ValueError, match="unknown storage tier"):
        index.run(lambda uow: uow.counters.move_tier(datastore_id, image_set_id, "GLACIER"))
    # Frames added while archived count in the archive; a recount keeps the tier.
    more = FrameRef(datastore_id, image_set_id, "e" * 32, "1.2.840.10008.1.2.1", 5)
    index.run(lambda uow: uow.image_sets.add_frames([more]))
    assert usage(index, datastore_id).storage_bytes == {FREQUENT_ACCESS: 0, ARCHIVE_INSTANT_ACCESS: 105}
    index.run(lambda uow: uow.counters.recount())
    assert usage(index, datastore_id).storage_bytes == {FREQUENT_ACCESS: 0, ARCHIVE_INSTANT_ACCESS: 105}
    index.run(lambda uow: uow.counters.move_tier(datastore_id, image_set_id, FREQUENT_ACCESS))
    assert usage(index, datastore_id).storage_bytes == {FREQUENT_ACCESS: 105, ARCHIVE_INSTANT_ACCESS: 0}


# -- recount -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_maintained_counters_equal_a_recount_after_a_random_workload(
    index: Index, new_datastore: NewDatastore, seed: int
) -> None:
    datastore_id = new_datastore()
    random_workload(index, datastore_id, seed)
    maintained = summary(usage(index, datastore_id))
    index.run(lambda uow: uow.counters.recount())
    assert summary(usage(index, datastore_id)) == maintained
    assert maintained["image_sets"] > 0


def test_recount_repairs_rows_written_around_the_repositories(backend: Backend, new_datastore: NewDatastore) -> None:
    datastore_id = new_datastore()
    backend.insert_image_set(datastore_id, new_id(), "ACTIVE")  # bypasses the port: not counted
    backend.insert_image_set(datastore_id, new_id(), "DELETED")
    assert usage(backend.index, datastore_id).image_sets == 0
    backend.index.run(lambda uow: uow.counters.recount())
    found = usage(backend.index, datastore_id)
    assert (found.status, found.image_sets, found.primary_image_sets, found.small_image_sets) == ("ACTIVE", 1, 1, 1)


# -- import progress -----------------------------------------------------------------------------------------------


def test_import_progress_covers_running_jobs_only(index: Index, new_datastore: NewDatastore) -> None:
    datastore_id = new_datastore()

    def job(status: JobStatus) -> ImportJob:
        return ImportJob(
            job_id=new_id(),
            datastore_id=datastore_id,
            job_name="j",
            status=status,
            data_access_role_arn="arn:aws:iam::123456789012:role/r",
            input_s3_uri="s3://in/",
            output_s3_uri="s3://out/",
            client_token=new_id(),
            submitted_at=T0,
            updated_at=T0,
        )

    running, done = job(JobStatus.IN_PROGRESS), job(JobStatus.COMPLETED)
    files = [
        ImportFile(running.job_id, 1, "a.dcm", 100, FileStatus.STAGED, group_key="g"),
        ImportFile(running.job_id, 2, "b.dcm", 200, FileStatus.FAILED, error_type="X", error_message="bad"),
        ImportFile(running.job_id, 3, "c.dcm", 400),
        ImportFile(done.job_id, 1, "d.dcm", 800, FileStatus.STAGED, group_key="g"),
    ]

    def add(uow: UnitOfWork) -> None:
        uow.import_jobs.add(running)
        uow.import_jobs.add(done)
        uow.import_jobs.add_files(files)

    index.run(add)
    progress = index.run(lambda uow: uow.counters.import_progress(), readonly=True)
    assert progress == [
        ImportProgress(
            datastore_id=datastore_id,
            job_id=running.job_id,
            submitted_at=T0,
            files_total=3,
            files_done=2,
            files_failed=1,
            bytes_total=700,
            bytes_done=300,
        )
    ]
    assert progress[0].bytes_per_second(T0 + timedelta(seconds=10)) == 30.0
    assert progress[0].bytes_per_second(T0) == 0.0
