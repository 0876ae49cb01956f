"""Running import jobs off the request path: claim, list, process in workers, commit, write outputs.

Any server process may run any job: a job is claimed with a lease in the index (renewed while it runs), so
a job whose process died is taken over by another (or by the same server after a restart) once the lease
expires. Files already staged are not processed again and series groups already committed are not applied
again (``import_commits``), so a resumed job neither loses files nor duplicates image sets. Files go to a
process pool with a bounded number in flight; outcomes are recorded as they arrive, so memory is bounded
whatever the job's size. Limits (guide 22672-22776): 5,000 files (adjustable), 10 GB per job, 4 GB per file,
10,000 nested folders, 50 MB of metadata per image set (adjustable).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, replace
from datetime import timedelta

from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.crypto.model import DataKey
from openhi.datastores.model import LosslessStorageFormat
from openhi.errors import OpenHIError
from openhi.events import emit
from openhi.imagesets.document import MAX_METADATA_BYTES
from openhi.imports.commit import assignments_of, commit_group
from openhi.imports.mappings import mappings_of
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.imports.outputs import write_outputs
from openhi.imports.pipeline import FileOutcome, FileTask
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)
GB = 1024**3


@dataclass(frozen=True)
class ImportLimits:
    """Per-job limits (guide 22672-22776)."""

    max_files: int = 5000
    max_total_bytes: int = 10 * GB
    max_file_bytes: int = 4 * GB
    max_folders: int = 10_000
    max_metadata_bytes: int = MAX_METADATA_BYTES  # of each image set the job writes (else the job fails)


class JobFailedError(OpenHIError):
    """The job as a whole cannot run (its message becomes the job's ``message``)."""


Progress = Callable[[FileOutcome], None]


class ImportRunner:
    """Claims and runs import jobs."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        blob_url: str,
        open_input: Callable[[str], BlobStore],
        open_output: Callable[[str], BlobStore],
        executor: Callable[[], Executor],
        task_fn: Callable[[list[FileTask]], list[FileOutcome]],
        clock: Clock,
        *,
        limits: ImportLimits = ImportLimits(),
        lease_seconds: float = 30.0,
        max_running_jobs: int = 4,
        in_flight: int = 4,
        files_per_task: int = 4,
        data_keys: Callable[[str], DataKey | None] | None = None,  # encryption at rest: a data store's key
    ) -> None:
        self._data_keys = data_keys
        self._index, self._blobs, self._blob_url = index, blobs, blob_url
        self._open_input, self._open_output = open_input, open_output
        self._executor_factory = executor
        self._task_fn = task_fn
        self._files_per_task = files_per_task
        self._executor: Executor | None = None
        self._clock = clock
        self._limits = limits
        self._lease = timedelta(seconds=lease_seconds)
        self._max_running = max_running_jobs
        self._in_flight = in_flight
        self.owner = f"openhi-{uuid.uuid4().hex[:12]}"
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- scheduling -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Start every runnable job this process can take now (called periodically)."""
        with self._lock:
            self._running = {k: t for k, t in self._running.items() if t.is_alive()}
            free = self._max_running - len(self._running)
        if free <= 0 or self._stopping.is_set():
            return
        for job in self._index.run(lambda uow: uow.import_jobs.runnable(self._clock()), readonly=True)[:free]:
            if job.job_id in self._running or not self._claim(job.job_id):
                continue
            thread = threading.Thread(target=self._run_quietly, args=(job,), name=f"import-{job.job_id}")
            with self._lock:
                self._running[job.job_id] = thread
            thread.start()

    def warm_up(self) -> Executor:
        """Start the worker processes now (imports of codecs and DICOM libraries take a moment in each)."""
        if self._executor is None:
            self._executor = self._executor_factory()
            for future in [self._executor.submit(_warm) for _ in range(self._in_flight)]:
                future.result()
        return self._executor

    def run_now(self, datastore_id: str, job_id: str, progress: Progress | None = None) -> ImportJob:
        """Claim and run one job in this thread (the ``openhi import`` command)."""
        if not self._claim(job_id):
            raise JobFailedError(f"import job {job_id} is being run by another process")
        return self.run_job(datastore_id, job_id, progress)

    def stop(self) -> None:
        """Stop taking jobs, let running ones reach a safe point, shut the workers down."""
        self._stopping.set()
        for thread in list(self._running.values()):
            thread.join(timeout=30)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _claim(self, job_id: str) -> bool:
        now = self._clock()
        return self._index.run(lambda uow: uow.import_jobs.claim(job_id, self.owner, now + self._lease, now))

    def _run_quietly(self, job: ImportJob) -> None:
        try:
            self.run_job(job.datastore_id, job.job_id)
        except Exception:
            log.exception("import job %s stopped unexpectedly; it will be resumed", job.job_id)

    # -- one job --------------------------------------------------------------------------------------

    def _job(self, datastore_id: str, job_id: str) -> ImportJob:
        found = self._index.run(lambda uow: uow.import_jobs.get(datastore_id, job_id), readonly=True)
        if found is None:
            raise JobFailedError(f"import job {job_id} vanished")
        return found

    def _save(self, job: ImportJob) -> ImportJob:
        job = replace(job, updated_at=self._clock())
        self._index.run(lambda uow: emit.save_import_job(uow, job))
        return job

    def run_job(self, datastore_id: str, job_id: str, progress: Progress | None = None) -> ImportJob:
        """Run (or resume) one claimed job to COMPLETED or FAILED and return it."""
        job = self._job(datastore_id, job_id)
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            return job
        try:
            files = self._index.run(lambda uow: uow.import_jobs.list_files(job_id), readonly=True)
            if not files:
                files = self._scan(job)
            if job.status == JobStatus.SUBMITTED:
                job = self._save(replace(job, status=JobStatus.IN_PROGRESS))
            self._process(job, [f for f in files if f.status == FileStatus.PENDING], progress)
            if self._stopping.is_set():  # shutting down: hand the job back at once, it resumes later
                return self._save(replace(self._job(job.datastore_id, job_id), lease_owner=None, lease_until=None))
            groups = self._index.run(lambda uow: uow.import_jobs.staged_groups(job_id), readonly=True)
            for group in groups:
                limit = self._limits.max_metadata_bytes
                commit_group(self._index, self._blobs, self._clock, job, group, max_metadata_bytes=limit)
            all_files = self._index.run(lambda uow: uow.import_jobs.list_files(job_id), readonly=True)
            write_outputs(self._output(job), job, all_files, assignments_of(self._index, job_id))
            status, message = JobStatus.COMPLETED, None
        except JobFailedError as exc:
            status, message = JobStatus.FAILED, exc.message
        except OpenHIError as exc:
            status, message = JobStatus.FAILED, f"The import job could not run: {exc.message}"
        done = replace(job, status=status, message=message, ended_at=self._clock(), lease_owner=None, lease_until=None)
        return self._save(done)

    def _output(self, job: ImportJob) -> BlobStore:
        try:
            return self._open_output(job.output_s3_uri)
        except OpenHIError as exc:
            raise JobFailedError(f"outputS3Uri {job.output_s3_uri} cannot be written: {exc.message}") from exc

    def _scan(self, job: ImportJob) -> list[ImportFile]:
        """List the input, enforce the limits, record every file as PENDING."""
        try:
            source = self._open_input(job.input_s3_uri)
        except OpenHIError as exc:
            raise JobFailedError(f"inputS3Uri {job.input_s3_uri} cannot be read: {exc.message}") from exc
        metadata_files = {m.metadata_file_path for m in mappings_of(job.import_configuration)}
        for path in sorted(metadata_files):
            if source.head(path) is None:
                raise JobFailedError(f"The metadata file {path} of importConfiguration is not in inputS3Uri")
        files: list[ImportFile] = []
        folders: set[str] = set()
        total = 0
        keys = (key for key in source.iter_prefix("") if key not in metadata_files)
        for seq, key in enumerate(keys):
            if len(files) >= self._limits.max_files:
                raise JobFailedError(f"The input holds more than {self._limits.max_files} files, the per-job limit")
            info = source.head(key)
            size = info.size if info else 0
            total += size
            if total > self._limits.max_total_bytes:
                raise JobFailedError(
                    f"The input holds more than {self._limits.max_total_bytes // GB} GB, the per-job limit"
                )
            folders.add(key.rsplit("/", 1)[0] if "/" in key else "")
            if len(folders) > self._limits.max_folders:
                raise JobFailedError(f"The input has more than {self._limits.max_folders} nested folders, the limit")
            file = ImportFile(job.job_id, seq, key, size)
            if size > self._limits.max_file_bytes:
                message = f"The file is larger than {self._limits.max_file_bytes // GB} GB, the per-file limit"
                file = replace(file, status=FileStatus.FAILED, error_type="ValidationException", error_message=message)
            files.append(file)
        self._index.run(lambda uow: uow.import_jobs.add_files(files))
        return files

    def _process(self, job: ImportJob, pending: list[ImportFile], progress: Progress | None) -> None:
        """Send pending files to the workers, a bounded number at a time, recording each outcome."""
        if not pending:
            return
        executor = self.warm_up()
        target = self._target_format(job.datastore_id)
        mappings = mappings_of(job.import_configuration)
        data_key = self._data_keys(job.datastore_id) if self._data_keys is not None else None
        # Files go to the workers a few per task: fewer round trips through the pool's queues, so the workers
        # do not wait for the main process while it records outcomes.
        batches = (pending[i : i + self._files_per_task] for i in range(0, len(pending), self._files_per_task))
        running: set[Future[list[FileOutcome]]] = set()
        renew_every = self._lease.total_seconds() / 3
        renewed = time.monotonic()
        while True:
            while len(running) < self._in_flight and not self._stopping.is_set():
                batch = next(batches, None)
                if batch is None:
                    break
                tasks = [
                    FileTask(
                        job.job_id,
                        job.datastore_id,
                        file.seq,
                        file.input_key,
                        job.input_s3_uri,
                        self._blob_url,
                        target,
                        mappings=mappings,
                        data_key=data_key,
                    )
                    for file in batch
                ]
                running.add(executor.submit(self._task_fn, tasks))
            if not running:
                return
            # Every outcome finished by now is recorded in one transaction; the workers keep going meanwhile
            # on the files still in flight, so the in-flight bound must cover a few records' time.
            done, running = wait(running, return_when=FIRST_COMPLETED)
            outcomes = [outcome for future in sorted(done, key=id) for outcome in future.result()]
            self._record(job, outcomes)
            for outcome in outcomes:
                if progress is not None:
                    progress(outcome)
            if time.monotonic() - renewed > renew_every:
                if not self._claim(job.job_id):
                    raise JobFailedError("Another process took over this import job")
                renewed = time.monotonic()

    def _record(self, job: ImportJob, outcomes: list[FileOutcome]) -> None:
        """Store the outcomes of finished files, in one unit of work."""
        files = [
            ImportFile(
                job.job_id,
                outcome.seq,
                outcome.input_key,
                outcome.size,
                FileStatus.STAGED if outcome.staged is not None else FileStatus.FAILED,
                outcome.group_key,
                outcome.staged,
                outcome.error_type,
                outcome.error_message,
            )
            for outcome in outcomes
        ]

        def work(uow: UnitOfWork) -> None:
            for file in files:
                uow.import_jobs.record_file(file)

        self._index.run(work)

    def _target_format(self, datastore_id: str) -> LosslessStorageFormat:
        datastore = self._index.run(lambda uow: uow.datastores.get(datastore_id), readonly=True)
        return datastore.lossless_storage_format if datastore else LosslessStorageFormat.HTJ2K


def _warm() -> None:
    """Runs in a worker: import what every task needs, so the first real file does not pay for it."""
    import openhi.imports.pipeline  # noqa: F401
