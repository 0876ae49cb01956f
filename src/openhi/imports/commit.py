"""The commit step of an import job: staged instances of one series become image set versions.

One unit of work per (job, series): it plans placements (``imagesets.grouping``), merges the instances into
each target image set's metadata document (``imagesets.document``), writes the document blob (immutable and
content-addressed, so a retried or re-run commit writes the same key), inserts the new version and the
frame references, updates the image set row, and records the group as committed, all in one transaction
(guide 3217-3360: a series imported in one job gives one primary image set, or one new version of it).
A crash before the transaction commits leaves nothing in the index; the re-run applies the group once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.ids import new_id
from openhi.imagesets import document
from openhi.imagesets.grouping import Placement, plan
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetWorkflowStatus,
)
from openhi.imagesets.staged import StagedInstance
from openhi.imagesets.versions import NewVersion, current, load_document, store_document, write_version
from openhi.imports.model import ImportJob
from openhi.index.port import Index, UnitOfWork


@dataclass(frozen=True)
class Assignment:
    """Where one input file's instance ended up (for success.ndjson and warning.ndjson)."""

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


def _apply(
    uow: UnitOfWork,
    blobs: BlobStore,
    job: ImportJob,
    placement: Placement,
    primary: ImageSet | None,
    clock: Clock,
) -> list[Assignment]:
    now = clock()
    ds_id = job.datastore_id
    if placement.image_set_id is not None and primary is not None:
        image_set_id = placement.image_set_id
        base = load_document(blobs, current(uow, primary))
        version_id = primary.version_id + 1
        workflow = ImageSetWorkflowStatus.UPDATED
        created_at = primary.created_at
    else:
        image_set_id, version_id = new_id(), 1
        base = document.empty_document(ds_id, image_set_id)
        workflow, created_at = ImageSetWorkflowStatus.CREATED, now
    merged = document.merge(base, placement.instances)
    new = NewVersion.of(
        merged,
        datastore_id=ds_id,
        image_set_id=image_set_id,
        version_id=version_id,
        metadata_key=store_document(blobs, ds_id, merged),
        workflow_status=workflow,
        is_primary=placement.is_primary,
        grouping=placement.grouping,
        created_at=created_at,
    )
    write_version(uow, new, now, job_id=job.job_id)
    uow.image_sets.add_frames(
        [
            FrameRef(ds_id, image_set_id, frame["ID"], staged.stored_transfer_syntax, size)
            for staged in placement.instances
            for frame, size in zip(staged.image_frames, staged.stored_frame_sizes, strict=True)
        ]
    )
    return [Assignment(s.input_key, image_set_id, placement.is_primary, version_id) for s in placement.instances]


def commit_group(index: Index, blobs: BlobStore, clock: Clock, job: ImportJob, group_key: str) -> None:
    """Apply one series group of a job to image sets, exactly once."""

    def work(uow: UnitOfWork) -> None:
        if uow.import_jobs.is_committed(job.job_id, group_key):
            return
        staged: Sequence[StagedInstance] = [
            StagedInstance.from_bytes(f.result)
            for f in uow.import_jobs.staged_in_group(job.job_id, group_key)
            if f.result is not None
        ]
        primary = uow.image_sets.find_primary(job.datastore_id, group_key)
        placements = plan(staged, primary.image_set_id if primary else None, primary.grouping if primary else None)
        assignments: list[Assignment] = []
        for placement in placements:
            assignments += _apply(uow, blobs, job, placement, primary, clock)
        uow.import_jobs.mark_committed(job.job_id, group_key, [a.encode() for a in assignments])

    index.run(work)


def assignments_of(index: Index, job_id: str) -> dict[str, Assignment]:
    """input key -> assignment, for every committed group of the job."""
    committed = index.run(lambda uow: uow.import_jobs.committed_image_sets(job_id), readonly=True)
    return {a.input_key: a for entries in committed.values() for a in map(Assignment.decode, entries)}
