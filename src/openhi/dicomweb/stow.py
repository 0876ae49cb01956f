"""STOW-RS (StoreDICOM, StoreDICOMStudy; guide 1780-1880, PS3.18 §10.5): store the parts of one request.

One code path with import jobs (guide 1815-1820: "organized ... using the same logic as asynchronous import
jobs"): the spooled body is split into one file per part (``stow_multipart``), each part runs through
``imports.pipeline.import_file`` in the import worker processes (parsing, normalization, transcoding to the
data store's lossless format, CRC verification, warnings; every core busy), and the staged instances of each
series are committed by ``imports.commit.commit_staged``: they join the series' primary image set, or a
non-primary one when their metadata conflicts with it (guide 3217-3360).

Per part, before any pixel is decoded (``stow_parts.peek``): a part that is not ``application/dicom`` fails
with 0xC000; with StoreDICOMStudy, an instance of another study fails with 0x0110 (272, processing failure;
PS3.18 §10.5.3.1 names the Study Instance UID mismatch as a conflict); a SOP Instance UID sent twice in one
request is stored once (its first part) and every later copy fails with 0x0111 (Duplicate SOP Instance,
PS3.7 C.4, an additional code PS3.18 Table I.2-2 allows). An instance already stored by an earlier request
is replaced, as a re-import replaces it (guide 3245-3250). A bad part fails alone; the others are stored.

A primary image set LOCKED by UpdateImageSetMetadata, CopyImageSet or DeleteImageSet: the commit WAITS for
the lock to end (those writes finish in the background within seconds, and ``WriteRecovery`` ends locks a
dead process left), polling for at most ``lock_wait_seconds`` (default 30 s); if the image set is still
locked then, the instances of that series fail with 0xA700 (out of resources: retry later) and are not
stored. Two Store requests of one series (threads or server processes) commit one after the other: the
index runs each commit serializable and re-runs the one that lost the race, which then merges into the
version the other wrote, so no instance is lost.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openhi.access import guard
from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.crypto.model import DataKey
from openhi.datastores.model import DatastoreStatus, LosslessStorageFormat
from openhi.dicomweb.stow_multipart import BodyType, SplitPart, split_multipart
from openhi.dicomweb.stow_parts import (
    CANNOT_UNDERSTAND,
    DUPLICATE_SOP_INSTANCE,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    PartHeader,
    failure_reason,
    peek,
    warning_reason,
)
from openhi.dicomweb.stow_response import FailedInstance, StoredInstance, StowResult
from openhi.errors import ConflictError, NotFoundError, OpenHIError, UnavailableError
from openhi.imagesets.staged import StagedInstance
from openhi.imports.commit import Assignment, PrimaryLockedError, commit_staged, wait_while_locked
from openhi.imports.pipeline import FileOutcome, FileTask
from openhi.index.port import Index, UnitOfWork

_SPOOLED = re.compile(r"(?:openhi-stow|stow)-(?P<pid>\d+)-.*")


def _running(pid: int) -> bool:
    """True when a process with this pid exists (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30.0
COMMIT_ATTEMPTS = 4  # a commit that lost every retry of one unit of work is tried again this many times
TaskFn = Callable[[list[FileTask]], list[FileOutcome]]


@dataclass(frozen=True)
class _Pending:
    """A part bound for the pipeline."""

    part: SplitPart
    header: PartHeader


class StowService:
    """Stores the parts of StoreDICOM / StoreDICOMStudy requests."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        blob_url: str,
        executor: Callable[[], Executor],
        task_fn: TaskFn,
        clock: Clock,
        *,
        spool_root: Path | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
        data_keys: Callable[[str], DataKey | None] | None = None,  # encryption at rest: a data store's key
    ) -> None:
        self._data_keys = data_keys
        self._index, self._blobs, self._blob_url = index, blobs, blob_url
        self._executor, self._task_fn, self._clock = executor, task_fn, clock
        self._spool_root = (spool_root or Path(tempfile.gettempdir()) / "openhi-stow").resolve()
        self._lock_wait = lock_wait_seconds

    @property
    def spool_root(self) -> Path:
        """Where request bodies and their parts are spooled (one folder for every process of this machine)."""
        return self._spool_root

    def sweep_stale(self) -> int:
        """Remove what processes that no longer run left in the spool (a crash mid-request); return how many.

        Spooled bodies (``openhi-stow-<pid>-*``, written by the HTTP edge) and part folders (``stow-<pid>-*``)
        carry the pid of the process that made them; those of a live process are left alone.
        """
        removed = 0
        if not self._spool_root.is_dir():
            return removed
        for entry in self._spool_root.iterdir():
            match = _SPOOLED.fullmatch(entry.name)
            if match is None or _running(int(match.group("pid"))):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    # -- the request ----------------------------------------------------------------------------------

    def target_format(self, datastore_id: str) -> LosslessStorageFormat:
        """The data store's lossless format; 404 when it does not exist, 409 when it is not ACTIVE."""
        datastore = self._index.run(lambda uow: uow.datastores.get(datastore_id), readonly=True)
        if datastore is None or datastore.status == DatastoreStatus.DELETED:
            raise NotFoundError(f"Datastore {datastore_id} does not exist")
        if datastore.status != DatastoreStatus.ACTIVE:
            raise ConflictError(f"Datastore {datastore_id} is {datastore.status.value}, not ACTIVE")
        return datastore.lossless_storage_format

    def store(self, datastore_id: str, study_uid: str | None, body: Path, kind: BodyType) -> StowResult:
        """Store every part of the spooled ``body``; 400 / 404 / 409 errors before anything is stored.

        The caller must be allowed StoreDICOM, or StoreDICOMStudy for ``study_uid`` (guide 21725-21750).
        """
        guard.require(datastore_id=datastore_id, study_uid=study_uid)
        target = self.target_format(datastore_id)
        result = StowResult(target_study=study_uid)
        with self._workdir() as workdir:
            parts = self._parts(body, kind, workdir)
            pending = self._screen(parts, study_uid, result)
            staged = self._process(datastore_id, target, workdir, pending, result)
            by_series: dict[str, list[tuple[_Pending, StagedInstance]]] = {}
            for item, instance in staged:
                by_series.setdefault(instance.group_key, []).append((item, instance))
            for group in by_series.values():
                self._commit(datastore_id, group, result)
        result.failed.sort(key=lambda f: f.number)
        result.stored.sort(key=lambda s: s.number)
        for failed in result.failed:
            log.info("STOW-RS part %d not stored (0x%04X): %s", failed.number, failed.reason, failed.message)
        return result

    @contextmanager
    def _workdir(self) -> Iterator[Path]:
        self._spool_root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"stow-{os.getpid()}-", dir=self._spool_root))
        try:
            yield workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def _parts(body: Path, kind: BodyType, workdir: Path) -> list[SplitPart]:
        if kind.multipart:
            with body.open("rb") as source:
                return split_multipart(source, kind.boundary, workdir)
        single = workdir / "part-00001.dcm"
        try:
            os.link(body, single)  # same file system: no copy
        except OSError:
            shutil.copyfile(body, single)
        return [SplitPart(1, single, single.stat().st_size, "application/dicom")]

    @staticmethod
    def _screen(parts: Sequence[SplitPart], study_uid: str | None, result: StowResult) -> list[_Pending]:
        """Fail the parts that must not reach the pipeline (see the module docstring); return the others."""
        pending: list[_Pending] = []
        seen: set[str] = set()
        for part in parts:
            if not part.is_dicom:
                message = f"part {part.number} is {part.content_type}, not application/dicom"
                result.failed.append(FailedInstance(part.number, CANNOT_UNDERSTAND, message))
                continue
            header = peek(part.path)
            uids = {"sop_class_uid": header.sop_class_uid, "sop_instance_uid": header.sop_instance_uid}
            if study_uid is not None and header.study_instance_uid not in (None, study_uid):
                message = f"part {part.number} belongs to study {header.study_instance_uid}, not {study_uid}"
                result.failed.append(FailedInstance(part.number, PROCESSING_FAILURE, message, **uids))
                continue
            if header.sop_instance_uid is not None:
                if header.sop_instance_uid in seen:
                    message = f"part {part.number} repeats SOP Instance {header.sop_instance_uid} of an earlier part"
                    result.failed.append(FailedInstance(part.number, DUPLICATE_SOP_INSTANCE, message, **uids))
                    continue
                seen.add(header.sop_instance_uid)
            pending.append(_Pending(part, header))
        return pending

    def _process(
        self,
        datastore_id: str,
        target: LosslessStorageFormat,
        workdir: Path,
        pending: Sequence[_Pending],
        result: StowResult,
    ) -> list[tuple[_Pending, StagedInstance]]:
        """Run every pending part through the import pipeline in the worker processes."""
        if not pending:
            return []
        request_id = workdir.name
        executor = self._executor()
        futures: list[tuple[_Pending, Future[list[FileOutcome]]]] = []
        data_key = self._data_keys(datastore_id) if self._data_keys is not None else None
        for item in pending:
            task = FileTask(
                job_id=f"stow-{request_id}",
                datastore_id=datastore_id,
                seq=item.part.number,
                input_key=f"{request_id}/{item.part.path.name}",
                source_url=self._spool_root.as_uri(),
                blob_url=self._blob_url,
                target=target,
                data_key=data_key,
            )
            futures.append((item, executor.submit(self._task_fn, [task])))
        staged: list[tuple[_Pending, StagedInstance]] = []
        study_uid = result.target_study
        for item, future in futures:
            uids = {"sop_class_uid": item.header.sop_class_uid, "sop_instance_uid": item.header.sop_instance_uid}
            try:
                [outcome] = future.result()
            except Exception as exc:  # the worker pool broke (a worker died): this part was not stored
                message = f"part {item.part.number}: the worker failed ({type(exc).__name__}: {exc})"
                result.failed.append(FailedInstance(item.part.number, OUT_OF_RESOURCES, message, **uids))
                continue
            if outcome.staged is None:
                reason = failure_reason(outcome.error_type, outcome.error_message)
                message = f"part {item.part.number}: {outcome.error_message}"
                result.failed.append(FailedInstance(item.part.number, reason, message, **uids))
                continue
            instance = StagedInstance.from_bytes(outcome.staged)
            if study_uid is not None and instance.grouping.study_instance_uid != study_uid:
                message = f"part {item.part.number} belongs to study {instance.grouping.study_instance_uid}"
                result.failed.append(FailedInstance(item.part.number, PROCESSING_FAILURE, message, **uids))
                continue
            staged.append((item, instance))
        return staged

    # -- commit ---------------------------------------------------------------------------------------

    def _commit(self, datastore_id: str, group: list[tuple[_Pending, StagedInstance]], result: StowResult) -> None:
        """Commit one series' instances (see the module docstring for locks and concurrency)."""
        instances = [instance for _, instance in group]

        def work(uow: UnitOfWork) -> list[Assignment]:
            return commit_staged(uow, self._blobs, self._clock, datastore_id, instances)

        reason, message = OUT_OF_RESOURCES, ""
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                assignments = wait_while_locked(lambda: self._index.run(work), self._lock_wait)
            except PrimaryLockedError as exc:
                message = exc.message
                break
            except UnavailableError as exc:  # lost every retry of a busy index: try again a little later
                message = exc.message
                time.sleep(0.05 * 2**attempt)
                continue
            except OpenHIError as exc:
                reason, message = PROCESSING_FAILURE, exc.message
                break
            self._record(group, assignments, result)
            return
        for item, instance in group:
            failed = FailedInstance(
                item.part.number,
                reason,
                f"part {item.part.number}: {message}",
                _sop_class(instance) or item.header.sop_class_uid,
                instance.sop_instance_uid,
            )
            result.failed.append(failed)

    @staticmethod
    def _record(
        group: list[tuple[_Pending, StagedInstance]], assignments: Sequence[Assignment], result: StowResult
    ) -> None:
        placed = {a.input_key: a for a in assignments}
        for item, instance in group:
            where = placed[instance.input_key]
            result.stored.append(
                StoredInstance(
                    number=item.part.number,
                    sop_class_uid=_sop_class(instance) or item.header.sop_class_uid,
                    sop_instance_uid=instance.sop_instance_uid,
                    study_instance_uid=instance.grouping.study_instance_uid or "",
                    series_instance_uid=instance.grouping.series_instance_uid or "",
                    image_set_id=where.image_set_id,
                    is_primary=where.is_primary,
                    warning=warning_reason(instance.warnings),
                )
            )


def _sop_class(instance: StagedInstance) -> str | None:
    value = instance.instance.get("SOPClassUID")
    return value if isinstance(value, str) and value else None
