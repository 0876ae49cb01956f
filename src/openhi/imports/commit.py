"""Committing staged instances of one series into image set versions: import jobs and STOW-RS alike.

``commit_staged`` is the one place where staged instances become image sets (guide 3217-3360 and 1815-1820:
StoreDICOM uses the same logic as import jobs). In the caller's unit of work it plans placements
(``imagesets.grouping``: the series' primary image set, or non-primary ones for conflicting metadata),
merges the instances into each target's metadata document (``imagesets.document``), writes the document blob
(immutable and content-addressed, so a retried or re-run commit writes the same key), inserts the new version
and the frame references and updates the image set row. The index runs the unit of work serializable with
retries, so two commits of the same series (two jobs, two STOW-RS requests, several server processes) are
applied one after the other and neither loses instances.

A primary image set that is LOCKED (UpdateImageSetMetadata, CopyImageSet or DeleteImageSet finishing in the
background, guide 6922-8866) refuses every write: ``commit_staged`` raises :class:`PrimaryLockedError`, and
``wait_while_locked`` re-runs the commit until the lock ends (the writer finishes, or ``WriteRecovery`` ends a
lock its dead process left) or the caller's wait runs out.

``commit_group`` is the import job's use of it: one unit of work per (job, series) that also records the group
as committed, so a crash before the transaction commits leaves nothing and the re-run applies the group once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.imagesets import document
from openhi.imagesets.grouping import Placement, plan
from openhi.imagesets.model import FrameRef, ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.imagesets.staged import StagedInstance
from openhi.imagesets.versions import NewVersion, current, load_document, store_document, write_version
from openhi.imports.model import ImportJob
from openhi.index.port import Index, UnitOfWork

JOB_LOCK_WAIT_SECONDS = 900.0  # an import job waits this long for a locked primary image set, then fails
LOCK_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Assignment:
    """Where one input file's instance ended up (success.ndjson, warning.ndjson, the STOW-RS response)."""

    input_key: str
    image_set_id: str
    is_primary: bool
    version: int

    def encode(self) -> str:
        """The form kept in ``import_commits`` (tab-separated)."""
        return f"{self.input_key}\t{self.image_set_id}\t{int(self.is_primary)}\t{self.version}"

    @classmethod
    def decode(cls, text: str) -> Assignment:
        """Inverse of ``encode``."""
        input_key, image_set_id, primary, version = text.rsplit("\t", 3)
        return cls(input_key, image_set_id, primary == "1", int(version))


class PrimaryLockedError(ConflictError):
    """The series' primary image set is LOCKED by an update, copy or delete; nothing was written."""

    def __init__(self, image_set: ImageSet) -> None:
        super().__init__(
            f"Image set {image_set.image_set_id} (the primary image set of series "
            f"{image_set.grouping.series_instance_uid}) is locked ({image_set.workflow_status.value}); retry later"
        )
        self.image_set_id = image_set.image_set_id


def _apply(
    uow: UnitOfWork,
    blobs: BlobStore,
    datastore_id: str,
    placement: Placement,
    primary: ImageSet | None,
    clock: Clock,
    job_id: str | None,
    max_metadata_bytes: int = document.MAX_METADATA_BYTES,
) -> list[Assignment]:
    now = clock()
    if placement.image_set_id is not None and primary is not None:
        image_set_id = placement.image_set_id
        base = load_document(blobs, current(uow, primary))
        version_id = primary.version_id + 1
        workflow = ImageSetWorkflowStatus.UPDATED
        created_at = primary.created_at
    else:
        image_set_id, version_id = new_id(), 1
        base = document.empty_document(datastore_id, image_set_id)
        workflow, created_at = ImageSetWorkflowStatus.CREATED, now
    merged = document.merge(base, placement.instances)
    document.check_size(merged, max_metadata_bytes)  # guide 22775: ServiceQuotaExceededException, nothing written
    new = NewVersion.of(
        merged,
        datastore_id=datastore_id,
        image_set_id=image_set_id,
        version_id=version_id,
        metadata_key=store_document(blobs, datastore_id, merged),
        workflow_status=workflow,
        is_primary=placement.is_primary,
        grouping=placement.grouping,
        created_at=created_at,
    )
    write_version(uow, new, now, job_id=job_id)
    uow.image_sets.add_frames(
        [
            FrameRef(datastore_id, image_set_id, frame["ID"], staged.stored_transfer_syntax, size)
            for staged in placement.instances
            for frame, size in zip(staged.image_frames, staged.stored_frame_sizes, strict=True)
        ]
    )
    return [Assignment(s.input_key, image_set_id, placement.is_primary, version_id) for s in placement.instances]


def commit_staged(
    uow: UnitOfWork,
    blobs: BlobStore,
    clock: Clock,
    datastore_id: str,
    staged: Sequence[StagedInstance],
    job_id: str | None = None,
    max_metadata_bytes: int = document.MAX_METADATA_BYTES,
) -> list[Assignment]:
    """Apply the staged instances of ONE series to image sets in ``uow``; where each one went.

    Raises :class:`PrimaryLockedError` (before writing anything) when the series' primary image set is locked.
    """
    if not staged:
        return []
    series_keys = {s.group_key for s in staged}
    if len(series_keys) != 1:
        raise ValueError(f"commit_staged takes one series at a time, got {len(series_keys)}")
    primary = uow.image_sets.find_primary(datastore_id, staged[0].group_key)
    if primary is not None and primary.state == ImageSetState.LOCKED:
        raise PrimaryLockedError(primary)
    placements = plan(staged, primary.image_set_id if primary else None, primary.grouping if primary else None)
    assignments: list[Assignment] = []
    for placement in placements:
        assignments += _apply(uow, blobs, datastore_id, placement, primary, clock, job_id, max_metadata_bytes)
    return assignments


def wait_while_locked[T](attempt: Callable[[], T], wait_seconds: float, poll_seconds: float = LOCK_POLL_SECONDS) -> T:
    """Run ``attempt`` (one unit of work), again every ``poll_seconds`` while it finds the primary locked.

    After ``wait_seconds`` the last :class:`PrimaryLockedError` propagates.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return attempt()
        except PrimaryLockedError:
            if time.monotonic() + poll_seconds > deadline:
                raise
            time.sleep(poll_seconds)


def commit_group(
    index: Index,
    blobs: BlobStore,
    clock: Clock,
    job: ImportJob,
    group_key: str,
    lock_wait_seconds: float = JOB_LOCK_WAIT_SECONDS,
    max_metadata_bytes: int = document.MAX_METADATA_BYTES,
) -> None:
    """Apply one series group of a job to image sets, exactly once (waiting while its primary is locked)."""

    def work(uow: UnitOfWork) -> None:
        if uow.import_jobs.is_committed(job.job_id, group_key):
            return
        staged: Sequence[StagedInstance] = [
            StagedInstance.from_bytes(f.result)
            for f in uow.import_jobs.staged_in_group(job.job_id, group_key)
            if f.result is not None
        ]
        assignments = commit_staged(
            uow, blobs, clock, job.datastore_id, staged, job_id=job.job_id, max_metadata_bytes=max_metadata_bytes
        )
        uow.import_jobs.mark_committed(job.job_id, group_key, [a.encode() for a in assignments])

    wait_while_locked(lambda: index.run(work), lock_wait_seconds)


def assignments_of(index: Index, job_id: str) -> dict[str, Assignment]:
    """input key -> assignment, for every committed group of the job."""
    committed = index.run(lambda uow: uow.import_jobs.committed_image_sets(job_id), readonly=True)
    return {a.input_key: a for entries in committed.values() for a in map(Assignment.decode, entries)}
