"""``SqlImportJobRepository``: import jobs, their input files and their committed groups on one connection.

A job is held by one worker at a time through a lease; ``claim`` takes or renews it with one conditional
UPDATE, so that of two processes claiming the same job exactly one sees ``rowcount == 1`` (on PostgreSQL
the loser's SERIALIZABLE transaction fails and ``SqlIndex.run`` re-runs it, which then sees the lease).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.engine import Row

from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.index.port import JobPageKey
from openhi.index.sql.image_sets import execute_or_conflict, insert_ignoring_duplicates
from openhi.index.sql.schema import import_commits, import_files, import_jobs

RUNNABLE_STATUSES = (JobStatus.SUBMITTED.value, JobStatus.IN_PROGRESS.value)
ID_SEPARATOR = ","  # image set ids are [0-9a-z]{32}: never contain it


def _job(row: Row[Any]) -> ImportJob:
    return ImportJob(
        job_id=row.job_id,
        datastore_id=row.datastore_id,
        job_name=row.job_name,
        status=JobStatus(row.status),
        data_access_role_arn=row.data_access_role_arn,
        input_s3_uri=row.input_s3_uri,
        output_s3_uri=row.output_s3_uri,
        client_token=row.client_token,
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        input_owner_account_id=row.input_owner_account_id,
        import_configuration=row.import_configuration,
        ended_at=row.ended_at,
        message=row.message,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def _job_values(job: ImportJob) -> dict[str, Any]:
    return {
        "datastore_id": job.datastore_id,
        "job_name": job.job_name,
        "status": job.status.value,
        "data_access_role_arn": job.data_access_role_arn,
        "input_s3_uri": job.input_s3_uri,
        "output_s3_uri": job.output_s3_uri,
        "input_owner_account_id": job.input_owner_account_id,
        "import_configuration": job.import_configuration,
        "client_token": job.client_token,
        "submitted_at": job.submitted_at,
        "updated_at": job.updated_at,
        "ended_at": job.ended_at,
        "message": job.message,
        "lease_owner": job.lease_owner,
        "lease_until": job.lease_until,
    }


def _file(row: Row[Any]) -> ImportFile:
    return ImportFile(
        job_id=row.job_id,
        seq=row.seq,
        input_key=row.input_key,
        size=int(row.size),
        status=FileStatus(row.status),
        group_key=row.group_key,
        result=None if row.result is None else bytes(row.result),
        error_type=row.error_type,
        error_message=row.error_message,
    )


def _file_outcome(file: ImportFile) -> dict[str, Any]:
    return {
        "status": file.status.value,
        "group_key": file.group_key,
        "result": file.result,
        "error_type": file.error_type,
        "error_message": file.error_message,
    }


def _split_ids(value: str) -> list[str]:
    return value.split(ID_SEPARATOR) if value else []


@dataclass(frozen=True)
class SqlImportJobRepository:
    """``ImportJobRepository`` on one connection."""

    conn: Connection

    # -- jobs ---------------------------------------------------------------------------------------------

    def add(self, job: ImportJob) -> None:
        execute_or_conflict(
            self.conn,
            insert(import_jobs).values({"job_id": job.job_id, **_job_values(job)}),
            None,
            f"An import job with id {job.job_id} or with the same client token already exists "
            "in the data store, or the data store is not in the index",
        )

    def get(self, datastore_id: str, job_id: str) -> ImportJob | None:
        row = self.conn.execute(
            select(import_jobs).where(import_jobs.c.datastore_id == datastore_id, import_jobs.c.job_id == job_id)
        ).one_or_none()
        return None if row is None else _job(row)

    def get_by_client_token(self, datastore_id: str, client_token: str) -> ImportJob | None:
        row = self.conn.execute(
            select(import_jobs).where(
                import_jobs.c.datastore_id == datastore_id, import_jobs.c.client_token == client_token
            )
        ).one_or_none()
        return None if row is None else _job(row)

    def list_page(
        self, datastore_id: str, status: JobStatus | None, after: JobPageKey | None, limit: int
    ) -> list[ImportJob]:
        query = select(import_jobs).where(import_jobs.c.datastore_id == datastore_id)
        if status is not None:
            query = query.where(import_jobs.c.status == status.value)
        if after is not None:
            query = query.where(
                or_(
                    import_jobs.c.submitted_at < after.submitted_at,
                    and_(import_jobs.c.submitted_at == after.submitted_at, import_jobs.c.job_id < after.job_id),
                )
            )
        query = query.order_by(import_jobs.c.submitted_at.desc(), import_jobs.c.job_id.desc())
        return [_job(row) for row in self.conn.execute(query.limit(max(limit, 0)))]

    def count_in(self, datastore_id: str, statuses: Sequence[JobStatus]) -> int:
        if not statuses:
            return 0
        query = (
            select(func.count())
            .select_from(import_jobs)
            .where(
                import_jobs.c.datastore_id == datastore_id,
                import_jobs.c.status.in_([status.value for status in statuses]),
            )
        )
        return int(self.conn.execute(query).scalar_one())

    def runnable(self, now: datetime) -> list[ImportJob]:
        query = (
            select(import_jobs)
            .where(
                import_jobs.c.status.in_(RUNNABLE_STATUSES),
                or_(import_jobs.c.lease_owner.is_(None), import_jobs.c.lease_until < now),
            )
            .order_by(import_jobs.c.submitted_at, import_jobs.c.job_id)
        )
        return [_job(row) for row in self.conn.execute(query)]

    def update(self, job: ImportJob) -> None:
        self.conn.execute(update(import_jobs).where(import_jobs.c.job_id == job.job_id).values(_job_values(job)))

    def claim(self, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
        result = self.conn.execute(
            update(import_jobs)
            .where(
                import_jobs.c.job_id == job_id,
                or_(
                    import_jobs.c.lease_owner.is_(None),
                    import_jobs.c.lease_until < now,
                    import_jobs.c.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return result.rowcount == 1

    # -- files --------------------------------------------------------------------------------------------

    def add_files(self, files: Sequence[ImportFile]) -> None:
        if not files:
            return
        rows = [
            {"job_id": file.job_id, "seq": file.seq, "input_key": file.input_key, "size": file.size}
            | _file_outcome(file)
            for file in files
        ]
        # executemany (batched by SQLAlchemy) rather than one VALUES list: no bound-parameter limit.
        statement = insert_ignoring_duplicates(self.conn, import_files, ["job_id", "seq"])
        execute_or_conflict(self.conn, statement, rows, "The import job of the files is not in the index")

    def list_files(self, job_id: str, status: FileStatus | None = None) -> list[ImportFile]:
        query = select(import_files).where(import_files.c.job_id == job_id)
        if status is not None:
            query = query.where(import_files.c.status == status.value)
        return [_file(row) for row in self.conn.execute(query.order_by(import_files.c.seq))]

    def record_file(self, file: ImportFile) -> None:
        self.conn.execute(
            update(import_files)
            .where(import_files.c.job_id == file.job_id, import_files.c.seq == file.seq)
            .values(_file_outcome(file))
        )

    def staged_groups(self, job_id: str) -> list[str]:
        query = (
            select(import_files.c.group_key)
            .where(
                import_files.c.job_id == job_id,
                import_files.c.status == FileStatus.STAGED.value,
                import_files.c.group_key.is_not(None),
            )
            .distinct()
        )
        # Sorted here, by code point: database collations (PostgreSQL's locale) may order text otherwise.
        return sorted(str(value) for value in self.conn.execute(query).scalars())

    def staged_in_group(self, job_id: str, group_key: str) -> list[ImportFile]:
        query = (
            select(import_files)
            .where(
                import_files.c.job_id == job_id,
                import_files.c.status == FileStatus.STAGED.value,
                import_files.c.group_key == group_key,
            )
            .order_by(import_files.c.seq)
        )
        return [_file(row) for row in self.conn.execute(query)]

    # -- commits ------------------------------------------------------------------------------------------

    def is_committed(self, job_id: str, group_key: str) -> bool:
        query = select(import_commits.c.job_id).where(
            import_commits.c.job_id == job_id, import_commits.c.group_key == group_key
        )
        return self.conn.execute(query).first() is not None

    def mark_committed(self, job_id: str, group_key: str, image_set_ids: Sequence[str]) -> None:
        values = {"job_id": job_id, "group_key": group_key, "image_set_ids": ID_SEPARATOR.join(image_set_ids)}
        execute_or_conflict(
            self.conn,
            insert(import_commits).values(values),
            None,
            f"Group {group_key!r} of import job {job_id} is already committed or the job is not in the index",
        )

    def committed_image_sets(self, job_id: str) -> dict[str, list[str]]:
        query = select(import_commits.c.group_key, import_commits.c.image_set_ids).where(
            import_commits.c.job_id == job_id
        )
        rows = sorted((str(row.group_key), str(row.image_set_ids)) for row in self.conn.execute(query))
        return {group_key: _split_ids(ids) for group_key, ids in rows}
