"""Contract suite of ``ImportJobRepository`` (jobs, leases, files, commits) on memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openhi.dicom.normalize import GroupingKey
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.index.port import Index, JobPageKey, UnitOfWork

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
NewDatastore = Callable[[], str]


def make_job(
    datastore_id: str,
    submitted_at: datetime = T0,
    status: JobStatus = JobStatus.SUBMITTED,
    token: str | None = None,
) -> ImportJob:
    return ImportJob(
        job_id=new_id(),
        datastore_id=datastore_id,
        job_name="import",
        status=status,
        data_access_role_arn="arn:aws:iam::123456789012:role/ImportRole",
        input_s3_uri="s3://in/study/",
        output_s3_uri="s3://out/logs/",
        client_token=token or new_id(),
        submitted_at=submitted_at,
        updated_at=submitted_at,
    )


def add_jobs(index: Index, *jobs: ImportJob) -> None:
    def work(uow: UnitOfWork) -> None:
        for job in jobs:
            uow.import_jobs.add(job)

    index.run(work)


def get(index: Index, job: ImportJob) -> ImportJob | None:
    return index.run(lambda uow: uow.import_jobs.get(job.datastore_id, job.job_id), readonly=True)


def files_of(index: Index, job_id: str, status: FileStatus | None = None) -> list[ImportFile]:
    return index.run(lambda uow: uow.import_jobs.list_files(job_id, status), readonly=True)


# -- jobs -------------------------------------------------------------------------------------------------


def test_job_round_trip_keeps_every_field(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    full = ImportJob(
        job_id=new_id(),
        datastore_id=store,
        job_name="nightly ünïcode",
        status=JobStatus.IN_PROGRESS,
        data_access_role_arn="arn:aws:iam::123456789012:role/ImportRole",
        input_s3_uri="s3://in/prefix/",
        output_s3_uri="s3://out/prefix/",
        client_token="token-1",
        submitted_at=datetime(2024, 5, 1, 14, 30, 0, 1, tzinfo=PLUS_TWO),
        updated_at=datetime(2024, 5, 1, 12, 31, 0, 999999, tzinfo=UTC),
        input_owner_account_id="210987654321",
        import_configuration='{"dicomImportConfiguration": {"x": 1}}',
        ended_at=datetime(2024, 5, 1, 15, 0, 0, 7, tzinfo=PLUS_TWO),
        message="3 of 4 files imported",
        lease_owner="worker-1",
        lease_until=datetime(2024, 5, 1, 12, 35, tzinfo=UTC),
    )
    bare = make_job(store)
    add_jobs(index, full, bare)

    got = get(index, full)
    assert got == full
    assert got is not None
    for moment in (got.submitted_at, got.updated_at, got.ended_at, got.lease_until):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)
    assert got.submitted_at == datetime(2024, 5, 1, 12, 30, 0, 1, tzinfo=UTC)
    assert get(index, bare) == bare
    assert get(index, replace(full, datastore_id=other)) is None
    assert get(index, replace(full, job_id=new_id())) is None


def test_update_replaces_the_job(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    job, neighbour = make_job(store), make_job(store)
    add_jobs(index, job, neighbour)
    done = replace(
        job,
        status=JobStatus.COMPLETED,
        updated_at=T0 + timedelta(minutes=5),
        ended_at=T0 + timedelta(minutes=5),
        message="done",
        lease_owner="w",
        lease_until=T0 + timedelta(minutes=6),
    )
    index.run(lambda uow: uow.import_jobs.update(done))
    assert get(index, done) == done
    assert get(index, neighbour) == neighbour
    released = replace(done, lease_owner=None, lease_until=None, message=None)
    index.run(lambda uow: uow.import_jobs.update(released))
    assert get(index, released) == released


def test_client_token_is_unique_per_datastore(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    original = make_job(store, token="same")
    add_jobs(index, original)
    newcomer, duplicate = make_job(store), make_job(store, token="same")

    with pytest.raises(ConflictError):
        add_jobs(index, newcomer, duplicate)
    assert get(index, newcomer) is None
    assert get(index, duplicate) is None

    elsewhere = make_job(other, token="same")
    add_jobs(index, elsewhere)
    assert index.run(lambda uow: uow.import_jobs.get_by_client_token(store, "same")) == original
    assert index.run(lambda uow: uow.import_jobs.get_by_client_token(other, "same")) == elsewhere
    assert index.run(lambda uow: uow.import_jobs.get_by_client_token(store, "other")) is None
    assert index.run(lambda uow: uow.import_jobs.count_in(store, list(JobStatus))) == 1

    with pytest.raises(ConflictError):  # same job id
        add_jobs(index, replace(original, client_token="fresh"))
    with pytest.raises(ConflictError):  # no such data store
        add_jobs(index, make_job(new_id()))


def test_conflict_caught_inside_the_unit_of_work_leaves_it_usable(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    add_jobs(index, make_job(store, token="same"))
    later = make_job(store)

    def work(uow: UnitOfWork) -> bool:
        try:
            uow.import_jobs.add(make_job(store, token="same"))
        except ConflictError:
            uow.import_jobs.add(later)
            return True
        return False

    assert index.run(work) is True
    assert get(index, later) == later


def test_list_is_newest_first_with_keyset_pages_and_status_filter(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    tie = T0 + timedelta(seconds=10)
    jobs = [
        make_job(store, T0),
        make_job(store, T0 + timedelta(microseconds=1), JobStatus.FAILED),
        make_job(store, tie),
        make_job(store, tie, JobStatus.COMPLETED),
        make_job(store, tie),
        make_job(store, T0 + timedelta(days=1), JobStatus.IN_PROGRESS),
    ]
    add_jobs(index, *jobs, make_job(other, tie))
    expected = sorted(jobs, key=lambda j: (j.submitted_at, j.job_id), reverse=True)

    def page(status: JobStatus | None, after: JobPageKey | None, limit: int) -> list[ImportJob]:
        return index.run(lambda uow: uow.import_jobs.list_page(store, status, after, limit), readonly=True)

    assert page(None, None, 100) == expected
    collected: list[ImportJob] = []
    after: JobPageKey | None = None
    while rows := page(None, after, 2):
        collected.extend(rows)
        after = JobPageKey(rows[-1].submitted_at, rows[-1].job_id)
    assert collected == expected

    submitted = [j for j in expected if j.status is JobStatus.SUBMITTED]
    assert len(submitted) == 3
    assert page(JobStatus.SUBMITTED, None, 100) == submitted
    first = page(JobStatus.SUBMITTED, None, 1)
    assert first == submitted[:1]
    assert page(JobStatus.SUBMITTED, JobPageKey(first[0].submitted_at, first[0].job_id), 100) == submitted[1:]
    assert page(JobStatus.SUBMITTED, None, 0) == []
    assert index.run(lambda uow: uow.import_jobs.list_page(new_id(), None, None, 10)) == []


def test_count_in(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    statuses = [JobStatus.SUBMITTED, JobStatus.SUBMITTED, JobStatus.IN_PROGRESS, JobStatus.COMPLETED]
    add_jobs(index, *(make_job(store, status=s) for s in statuses), make_job(other))

    def count(statuses: list[JobStatus]) -> int:
        return index.run(lambda uow: uow.import_jobs.count_in(store, statuses))

    assert count([JobStatus.SUBMITTED, JobStatus.IN_PROGRESS]) == 3
    assert count([JobStatus.COMPLETED]) == 1
    assert count([JobStatus.FAILED]) == 0
    assert count([]) == 0


# -- leases -----------------------------------------------------------------------------------------------


def test_runnable_lists_unleased_or_expired_active_jobs_oldest_first(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    now = T0 + timedelta(hours=1)

    def job(
        store_id: str,
        minutes: int,
        status: JobStatus,
        owner: str | None = None,
        until: datetime | None = None,
    ) -> ImportJob:
        made = make_job(store_id, T0 + timedelta(minutes=minutes), status)
        return replace(made, lease_owner=owner, lease_until=until)

    unleased = job(store, 5, JobStatus.SUBMITTED)
    expired = job(store, 1, JobStatus.IN_PROGRESS, "w1", now - timedelta(microseconds=1))
    elsewhere = job(other, 3, JobStatus.SUBMITTED)
    held = job(store, 0, JobStatus.IN_PROGRESS, "w2", now + timedelta(seconds=30))
    until_now = job(store, 2, JobStatus.SUBMITTED, "w3", now)  # expires strictly after ``now``
    finished = [job(store, 4, JobStatus.COMPLETED), job(store, 4, JobStatus.FAILED, "w", now - timedelta(1))]
    add_jobs(index, unleased, expired, elsewhere, held, until_now, *finished)

    runnable = index.run(lambda uow: uow.import_jobs.runnable(now), readonly=True)
    assert runnable == [expired, elsewhere, unleased]
    later = index.run(lambda uow: uow.import_jobs.runnable(now + timedelta(minutes=1)))
    assert later == [held, expired, until_now, elsewhere, unleased]


def test_claim_takes_renews_or_refuses_the_lease(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    job = make_job(store)
    add_jobs(index, job)
    now = T0 + timedelta(hours=1)

    def claim(owner: str, until: datetime, at: datetime) -> bool:
        return index.run(lambda uow: uow.import_jobs.claim(job.job_id, owner, until, at))

    def lease() -> tuple[str | None, datetime | None]:
        got = get(index, job)
        assert got is not None
        return got.lease_owner, got.lease_until

    assert claim("a", now + timedelta(minutes=1), now) is True  # unleased
    assert lease() == ("a", now + timedelta(minutes=1))
    assert claim("a", now + timedelta(minutes=2), now + timedelta(seconds=30)) is True  # renewal
    assert lease() == ("a", now + timedelta(minutes=2))
    assert claim("b", now + timedelta(minutes=9), now + timedelta(minutes=1)) is False  # held by a
    assert claim("b", now + timedelta(minutes=9), now + timedelta(minutes=2)) is False  # not yet expired
    assert lease() == ("a", now + timedelta(minutes=2))
    later = now + timedelta(minutes=2, microseconds=1)
    assert claim("b", later + timedelta(minutes=1), later) is True  # expired
    assert lease() == ("b", later + timedelta(minutes=1))
    assert claim("a", later + timedelta(minutes=5), later) is False
    assert index.run(lambda uow: uow.import_jobs.claim(new_id(), "a", later, now)) is False
    got = get(index, job)
    assert got == replace(job, lease_owner="b", lease_until=later + timedelta(minutes=1))


# -- files ------------------------------------------------------------------------------------------------


def test_files_are_added_idempotently_listed_in_order_and_recorded(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    job, other = make_job(store), make_job(store)
    add_jobs(index, job, other)
    files = [ImportFile(job.job_id, seq, f"study/{seq:04d}.dcm", 1000 + seq) for seq in (2, 0, 1)]
    index.run(lambda uow: uow.import_jobs.add_files(files))
    big = ImportFile(job.job_id, 3, "study/big ünï.dcm", 6 * 2**32)
    again = [replace(files[0], input_key="changed", size=1), big]
    index.run(lambda uow: uow.import_jobs.add_files(again))
    index.run(lambda uow: uow.import_jobs.add_files([]))
    theirs = ImportFile(other.job_id, 0, "their.dcm", 5)
    index.run(lambda uow: uow.import_jobs.add_files([theirs]))

    assert files_of(index, job.job_id) == [files[1], files[2], files[0], big]
    assert files_of(index, job.job_id, FileStatus.PENDING) == [files[1], files[2], files[0], big]
    assert files_of(index, other.job_id) == [theirs]
    assert files_of(index, new_id()) == []
    with pytest.raises(ConflictError):  # files belong to a job in the index
        index.run(lambda uow: uow.import_jobs.add_files([ImportFile(new_id(), 0, "x", 1)]))

    every_byte = bytes(range(256)) * 3
    staged_b = replace(files[0], status=FileStatus.STAGED, group_key="series-b", result=every_byte)
    staged_a = replace(files[1], status=FileStatus.STAGED, group_key="series-a", result=b"\x1f\x8b\x00")
    staged_a2 = replace(big, status=FileStatus.STAGED, group_key="series-a", result=b"")
    failed = replace(files[2], status=FileStatus.FAILED, error_type="InvalidDicom", error_message="not a DICOM file")

    def record(uow: UnitOfWork) -> None:
        for outcome in (staged_b, staged_a2, staged_a, failed):
            uow.import_jobs.record_file(outcome)
        uow.import_jobs.record_file(ImportFile(job.job_id, 99, "ghost", 1, FileStatus.FAILED))  # no row

    index.run(record)

    assert files_of(index, job.job_id) == [staged_a, failed, staged_b, staged_a2]
    assert files_of(index, job.job_id, FileStatus.STAGED) == [staged_a, staged_b, staged_a2]
    assert files_of(index, job.job_id, FileStatus.FAILED) == [failed]
    assert files_of(index, job.job_id, FileStatus.PENDING) == []
    assert index.run(lambda uow: uow.import_jobs.staged_groups(job.job_id)) == ["series-a", "series-b"]
    assert index.run(lambda uow: uow.import_jobs.staged_groups(other.job_id)) == []
    in_a = index.run(lambda uow: uow.import_jobs.staged_in_group(job.job_id, "series-a"))
    assert in_a == [staged_a, staged_a2]
    in_b = index.run(lambda uow: uow.import_jobs.staged_in_group(job.job_id, "series-b"))
    assert in_b == [staged_b]
    assert in_b[0].result == every_byte
    assert isinstance(in_b[0].result, bytes)
    assert index.run(lambda uow: uow.import_jobs.staged_in_group(job.job_id, "series-c")) == []

    # A retried file goes back to PENDING with its outcome cleared.
    index.run(
        lambda uow: uow.import_jobs.record_file(
            replace(failed, status=FileStatus.PENDING, error_type=None, error_message=None)
        )
    )
    assert files_of(index, job.job_id, FileStatus.PENDING) == [files[2]]


# -- commits ----------------------------------------------------------------------------------------------


def test_commits_are_recorded_once_per_group(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    job, other = make_job(store), make_job(store)
    add_jobs(index, job, other)
    one, two = new_id(), new_id()

    assert index.run(lambda uow: uow.import_jobs.is_committed(job.job_id, "g1")) is False
    assert index.run(lambda uow: uow.import_jobs.committed_image_sets(job.job_id)) == {}

    def commit(uow: UnitOfWork) -> None:
        uow.import_jobs.mark_committed(job.job_id, "g2", [two])
        uow.import_jobs.mark_committed(job.job_id, "g1", [one, two])
        uow.import_jobs.mark_committed(job.job_id, "g0", [])
        uow.import_jobs.mark_committed(other.job_id, "g1", [one])

    index.run(commit)

    assert index.run(lambda uow: uow.import_jobs.is_committed(job.job_id, "g1")) is True
    assert index.run(lambda uow: uow.import_jobs.is_committed(job.job_id, "g3")) is False
    assert index.run(lambda uow: uow.import_jobs.is_committed(new_id(), "g1")) is False
    committed = index.run(lambda uow: uow.import_jobs.committed_image_sets(job.job_id))
    assert committed == {"g0": [], "g1": [one, two], "g2": [two]}
    assert list(committed) == ["g0", "g1", "g2"]
    assert index.run(lambda uow: uow.import_jobs.committed_image_sets(other.job_id)) == {"g1": [one]}

    with pytest.raises(ConflictError):  # a group is applied once
        index.run(lambda uow: uow.import_jobs.mark_committed(job.job_id, "g1", [new_id()]))
    with pytest.raises(ConflictError):  # commits belong to a job in the index
        index.run(lambda uow: uow.import_jobs.mark_committed(new_id(), "g1", [one]))
    assert index.run(lambda uow: uow.import_jobs.committed_image_sets(job.job_id))["g1"] == [one, two]


# -- units of work ----------------------------------------------------------------------------------------


def test_failed_unit_of_work_leaves_nothing_behind(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    kept = make_job(store)
    add_jobs(index, kept)
    kept_file = ImportFile(kept.job_id, 0, "a.dcm", 10)
    index.run(lambda uow: uow.import_jobs.add_files([kept_file]))
    doomed = make_job(store)
    image_set = ImageSet(
        datastore_id=store,
        image_set_id=new_id(),
        version_id=1,
        state=ImageSetState.ACTIVE,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=True,
        created_at=T0,
        updated_at=T0,
        grouping=GroupingKey(
            study_date=None,
            accession_number=None,
            patient_id=None,
            study_instance_uid=None,
            study_id=None,
            series_instance_uid="1.2.3",
            series_number=None,
        ),
    )

    def work(uow: UnitOfWork) -> None:
        uow.import_jobs.add(doomed)
        uow.import_jobs.add_files([ImportFile(doomed.job_id, 0, "b.dcm", 1)])
        assert uow.import_jobs.claim(kept.job_id, "w", T0 + timedelta(minutes=1), T0)
        uow.import_jobs.update(replace(kept, status=JobStatus.IN_PROGRESS))
        uow.import_jobs.add_files([ImportFile(kept.job_id, 1, "c.dcm", 1)])
        uow.import_jobs.record_file(replace(kept_file, status=FileStatus.STAGED, group_key="g", result=b"x"))
        uow.image_sets.add(image_set)
        uow.import_jobs.mark_committed(kept.job_id, "g", [image_set.image_set_id])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        index.run(work)

    assert get(index, doomed) is None
    assert get(index, kept) == kept
    assert files_of(index, doomed.job_id) == []
    assert files_of(index, kept.job_id) == [kept_file]
    assert index.run(lambda uow: uow.import_jobs.committed_image_sets(kept.job_id)) == {}
    assert index.run(lambda uow: uow.image_sets.get(store, image_set.image_set_id)) is None
    assert index.run(lambda uow: uow.import_jobs.runnable(T0)) == [kept]
