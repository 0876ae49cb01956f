"""StartDICOMImportJob, GetDICOMImportJob, ListDICOMImportJobs (guide 3217-4247).

Starting a job only records it (SUBMITTED); ``ImportRunner`` runs it off the request path. ``clientToken``
makes StartDICOMImportJob idempotent per data store (the same token answers the same job; with other
parameters it is a ConflictException). The data store must be ACTIVE. At most ``max_concurrent_jobs``
(100, guide 22672-22776) jobs per data store may be SUBMITTED or IN_PROGRESS at once ->
ServiceQuotaExceededException. Inputs and outputs are ``s3://bucket/prefix/`` URIs, or, as an OpenHI
extension for local use, ``file:///absolute/folder/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openhi.access import guard
from openhi.clock import Clock
from openhi.datastores.model import DatastoreStatus
from openhi.datastores.service import load_datastore
from openhi.errors import ConflictError, NotFoundError, QuotaExceededError, ValidationError
from openhi.events import emit
from openhi.ids import new_id
from openhi.imports.model import ImportJob, JobStatus
from openhi.index.port import Index, JobPageKey, UnitOfWork
from openhi.search.tokens import TokenCodec

DEFAULT_PAGE_SIZE = 50
ACTIVE_STATUSES = (JobStatus.SUBMITTED, JobStatus.IN_PROGRESS)


@dataclass(frozen=True)
class StartImportRequest:
    """StartDICOMImportJob's inputs, validated against the model."""

    datastore_id: str
    client_token: str
    data_access_role_arn: str
    input_uri: str
    output_uri: str
    job_name: str | None = None
    input_owner_account_id: str | None = None
    import_configuration: str | None = None


@dataclass(frozen=True)
class JobPage:
    """One page of ListDICOMImportJobs."""

    jobs: list[ImportJob]
    next_token: str | None


def check_uri(value: str, field: str) -> str:
    """``s3://bucket/prefix`` or ``file:///absolute/path`` (the OpenHI extension)."""
    if value.startswith("file://") and not value.startswith("file:///"):
        raise ValidationError(f"{field} {value} must be file:///absolute/path", field=field)
    if not value.startswith(("s3://", "file:///")):
        raise ValidationError(f"{field} must be an s3:// URI (or file:/// for a local folder)", field=field)
    return value


def _same(job: ImportJob, request: StartImportRequest) -> bool:
    return (job.input_s3_uri, job.output_s3_uri, job.data_access_role_arn) == (
        request.input_uri,
        request.output_uri,
        request.data_access_role_arn,
    )


class ImportService:
    """Import job use cases over the index port."""

    def __init__(self, index: Index, clock: Clock, tokens: TokenCodec, max_concurrent_jobs: int = 100) -> None:
        self._index = index
        self._clock = clock
        self._tokens = tokens
        self._max_concurrent = max_concurrent_jobs

    def start(self, request: StartImportRequest) -> ImportJob:
        """Record a SUBMITTED job (or answer the one this client token already started)."""
        guard.require("StartDICOMImportJob", datastore_id=request.datastore_id)
        check_uri(request.input_uri, "inputS3Uri")
        check_uri(request.output_uri, "outputS3Uri")

        def work(uow: UnitOfWork) -> ImportJob:
            datastore = load_datastore(uow, request.datastore_id)
            existing = uow.import_jobs.get_by_client_token(datastore.datastore_id, request.client_token)
            if existing is not None:
                if not _same(existing, request):
                    raise ConflictError(
                        f"clientToken {request.client_token} was already used for import job "
                        f"{existing.job_id} with different parameters"
                    )
                return existing
            if datastore.status != DatastoreStatus.ACTIVE:
                raise ConflictError(f"Datastore {datastore.datastore_id} is {datastore.status.value}, not ACTIVE")
            if uow.import_jobs.count_in(datastore.datastore_id, ACTIVE_STATUSES) >= self._max_concurrent:
                raise QuotaExceededError(
                    f"Datastore {datastore.datastore_id} already has {self._max_concurrent} import jobs "
                    "running, the maximum"
                )
            now = self._clock()
            job_id = new_id()
            job = ImportJob(
                job_id=job_id,
                datastore_id=datastore.datastore_id,
                job_name=request.job_name or f"import-{job_id[:8]}",
                status=JobStatus.SUBMITTED,
                data_access_role_arn=request.data_access_role_arn,
                input_s3_uri=request.input_uri,
                output_s3_uri=request.output_uri,
                client_token=request.client_token,
                submitted_at=now,
                updated_at=now,
                input_owner_account_id=request.input_owner_account_id,
                import_configuration=request.import_configuration,
            )
            uow.import_jobs.add(job)
            emit.import_job_changed(uow, None, job)
            return job

        return self._index.run(work)

    def get(self, datastore_id: str, job_id: str) -> ImportJob:
        """The job, or ResourceNotFoundException."""
        guard.require("GetDICOMImportJob", datastore_id=datastore_id)

        def work(uow: UnitOfWork) -> ImportJob:
            load_datastore(uow, datastore_id)
            job = uow.import_jobs.get(datastore_id, job_id)
            if job is None:
                raise NotFoundError(f"Import job {job_id} does not exist in datastore {datastore_id}")
            return job

        return self._index.run(work, readonly=True)

    def list(
        self, datastore_id: str, status: JobStatus | None, next_token: str | None, max_results: int | None
    ) -> JobPage:
        """Newest first, paginated with an opaque token."""
        guard.require("ListDICOMImportJobs", datastore_id=datastore_id)
        scope = f"ListDICOMImportJobs:{datastore_id}:{status or ''}"
        after = None
        if next_token:
            position = self._tokens.decode(scope, next_token)
            after = JobPageKey(datetime.fromisoformat(position["s"]), position["i"])
        limit = max_results or DEFAULT_PAGE_SIZE

        def work(uow: UnitOfWork) -> list[ImportJob]:
            load_datastore(uow, datastore_id)
            return uow.import_jobs.list_page(datastore_id, status, after, limit + 1)

        rows = self._index.run(work, readonly=True)
        page, token = self._tokens.paginate(
            scope, rows, limit, lambda last: {"s": last.submitted_at.isoformat(), "i": last.job_id}
        )
        return JobPage(page, token)
