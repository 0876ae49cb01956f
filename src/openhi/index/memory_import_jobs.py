"""``MemoryImportJobRepository``: import jobs, their files and committed groups over ``MemoryState``.

Mirrors ``sql/import_jobs.py``: a job belongs to a data store that exists and its client token is unique
within the data store; files and commits belong to a job that exists; a group is committed once. The
lease rules are the SQL ``claim``'s WHERE clause: unleased, expired (``lease_until < now``) or same owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from openhi.errors import ConflictError
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.index.memory_state import MemoryState, utc, utc_or_none
from openhi.index.port import JobPageKey

RUNNABLE_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.IN_PROGRESS})


def _stored(job: ImportJob) -> ImportJob:
    return replace(
        job,
        submitted_at=utc(job.submitted_at),
        updated_at=utc(job.updated_at),
        ended_at=utc_or_none(job.ended_at),
        lease_until=utc_or_none(job.lease_until),
    )


def _lease_free(job: ImportJob, now: datetime) -> bool:
    # SQL: lease_owner IS NULL OR lease_until < now (NULL lease_until never counts as expired).
    return job.lease_owner is None or (job.lease_until is not None and job.lease_until < now)


@dataclass(frozen=True)
class MemoryImportJobRepository:
    """``ImportJobRepository`` over the state."""

    state: MemoryState

    # -- jobs ---------------------------------------------------------------------------------------------

    def add(self, job: ImportJob) -> None:
        if (
            job.job_id in self.state.import_jobs
            or job.datastore_id not in self.state.datastores
            or self.get_by_client_token(job.datastore_id, job.client_token) is not None
        ):
            raise ConflictError(
                f"An import job with id {job.job_id} or with the same client token already exists "
                "in the data store, or the data store is not in the index"
            )
        self.state.import_jobs[job.job_id] = _stored(job)

    def get(self, datastore_id: str, job_id: str) -> ImportJob | None:
        job = self.state.import_jobs.get(job_id)
        return job if job is not None and job.datastore_id == datastore_id else None

    def get_by_client_token(self, datastore_id: str, client_token: str) -> ImportJob | None:
        return next(
            (
                job
                for job in self.state.import_jobs.values()
                if job.datastore_id == datastore_id and job.client_token == client_token
            ),
            None,
        )

    def list_page(
        self, datastore_id: str, status: JobStatus | None, after: JobPageKey | None, limit: int
    ) -> list[ImportJob]:
        jobs = [
            job
            for job in self.state.import_jobs.values()
            if job.datastore_id == datastore_id and (status is None or job.status == status)
        ]
        if after is not None:
            position = (utc(after.submitted_at), after.job_id)
            jobs = [job for job in jobs if (job.submitted_at, job.job_id) < position]
        jobs.sort(key=lambda job: (job.submitted_at, job.job_id), reverse=True)
        return jobs[: max(limit, 0)]

    def count_in(self, datastore_id: str, statuses: Sequence[JobStatus]) -> int:
        wanted = set(statuses)
        return sum(
            1 for job in self.state.import_jobs.values() if job.datastore_id == datastore_id and job.status in wanted
        )

    def runnable(self, now: datetime) -> list[ImportJob]:
        jobs = [
            job
            for job in self.state.import_jobs.values()
            if job.status in RUNNABLE_STATUSES and _lease_free(job, utc(now))
        ]
        return sorted(jobs, key=lambda job: (job.submitted_at, job.job_id))

    def update(self, job: ImportJob) -> None:
        if job.job_id in self.state.import_jobs:  # as SQL UPDATE: no row, no change
            self.state.import_jobs[job.job_id] = _stored(job)

    def claim(self, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
        job = self.state.import_jobs.get(job_id)
        if job is None or not (_lease_free(job, utc(now)) or job.lease_owner == owner):
            return False
        self.state.import_jobs[job_id] = replace(job, lease_owner=owner, lease_until=utc(until))
        return True

    # -- files --------------------------------------------------------------------------------------------

    def add_files(self, files: Sequence[ImportFile]) -> None:
        if any(file.job_id not in self.state.import_jobs for file in files):
            raise ConflictError("The import job of the files is not in the index")
        for file in files:
            self.state.import_files.setdefault((file.job_id, file.seq), file)

    def list_files(self, job_id: str, status: FileStatus | None = None) -> list[ImportFile]:
        files = [
            file
            for (owner, _), file in self.state.import_files.items()
            if owner == job_id and (status is None or file.status == status)
        ]
        return sorted(files, key=lambda file: file.seq)

    def record_file(self, file: ImportFile) -> None:
        key = (file.job_id, file.seq)
        current = self.state.import_files.get(key)
        if current is None:  # as SQL UPDATE: no row, no change
            return
        self.state.import_files[key] = replace(
            current,
            status=file.status,
            group_key=file.group_key,
            result=file.result,
            error_type=file.error_type,
            error_message=file.error_message,
        )

    def staged_groups(self, job_id: str) -> list[str]:
        return sorted(
            {file.group_key for file in self.list_files(job_id, FileStatus.STAGED) if file.group_key is not None}
        )

    def staged_in_group(self, job_id: str, group_key: str) -> list[ImportFile]:
        return [file for file in self.list_files(job_id, FileStatus.STAGED) if file.group_key == group_key]

    # -- commits ------------------------------------------------------------------------------------------

    def is_committed(self, job_id: str, group_key: str) -> bool:
        return (job_id, group_key) in self.state.import_commits

    def mark_committed(self, job_id: str, group_key: str, image_set_ids: Sequence[str]) -> None:
        if (job_id, group_key) in self.state.import_commits or job_id not in self.state.import_jobs:
            raise ConflictError(
                f"Group {group_key!r} of import job {job_id} is already committed or the job is not in the index"
            )
        self.state.import_commits[(job_id, group_key)] = list(image_set_ids)

    def committed_image_sets(self, job_id: str) -> dict[str, list[str]]:
        return {
            group: list(ids) for (owner, group), ids in sorted(self.state.import_commits.items()) if owner == job_id
        }
