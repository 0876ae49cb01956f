"""CopyImageSet (guide 7874-8585, workflows 7766-7873): split, duplicate, merge, promote — sharing frames.

Synchronously: check both versions, select the instances (``copiableAttributes``), plan the result
(``imagesets.copy``: consistency unless ``force``, unique SOP Instance UIDs, at most 1,000 frames), choose the
destination, lock the source COPYING_WITH_READ_ONLY_ACCESS and the destination COPYING, and answer. A new
destination is created locked, with its first version already written. Without a destination the copy is a
new non-primary image set; with ``promoteToPrimary`` it joins the series' primary image set, or becomes it
when the series has none (the guide's two workflows). In the background the destination's frame references
are added (the frame blobs are shared, never duplicated) and both sides go back to ACTIVE: the destination
COPIED, the source COPIED as well (or both COPY_FAILED with a message on failure).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from openhi.access import guard
from openhi.blobs.port import BlobStore
from openhi.errors import ConflictError
from openhi.ids import new_id
from openhi.imagesets import document
from openhi.imagesets.copy import MAX_FRAMES_PER_COPY, CopyPlan, copy_into, grouping_of, parse_copiable, select
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import FrameRef, ImageSet, ImageSetWorkflowStatus
from openhi.imagesets.service import load_image_set
from openhi.imagesets.versions import NewVersion, current, load_document, store_document, write_version
from openhi.index.port import Index, UnitOfWork
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder


@dataclass(frozen=True)
class CopyRequest:
    """CopyImageSet's inputs (validated against the model)."""

    datastore_id: str
    source_image_set_id: str
    source_latest_version_id: int
    copiable_attributes: str | None = None
    destination_image_set_id: str | None = None
    destination_latest_version_id: int | None = None
    force: bool = False
    promote_to_primary: bool = False


@dataclass(frozen=True)
class CopyAccepted:
    """The synchronous answer: both sides locked, and the destination's next version."""

    source: ImageSet
    destination: ImageSet
    destination_version_id: int


class ImageSetCopies:
    """CopyImageSet."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        locks: Locks,
        *,
        max_frames: int = MAX_FRAMES_PER_COPY,
        max_metadata_bytes: int = document.MAX_METADATA_BYTES,
        access: AccessRecorder = NO_ACCESS_RECORDING,
    ) -> None:
        self._index = index
        self._blobs = blobs
        self._locks = locks
        self._max_frames = max_frames  # guide 22767 (adjustable)
        self._max_metadata = max_metadata_bytes  # guide 22775 (adjustable)
        self._access = access  # storage tiers: a copy is an access of its source and destination (guide 23029)

    def _destination(
        self, uow: UnitOfWork, request: CopyRequest, source: ImageSet, selected: dict[str, Any]
    ) -> tuple[ImageSet | None, bool]:
        """The existing destination (or None for a new one) and whether the result is primary."""
        if request.destination_image_set_id is not None:
            destination = load_image_set(uow, request.datastore_id, request.destination_image_set_id)
            if destination.image_set_id == source.image_set_id:
                raise ConflictError("An image set cannot be copied into itself")
            return destination, destination.is_primary or request.promote_to_primary
        if not request.promote_to_primary:
            return None, False
        series_uid = grouping_of(selected).series_instance_uid or ""
        primary = uow.image_sets.find_primary(request.datastore_id, series_uid)
        if primary is None or primary.image_set_id == source.image_set_id:
            return None, True
        return primary, True

    def copy(self, request: CopyRequest) -> CopyAccepted:
        """Plan, lock both sides, answer; the rest happens in the background."""
        guard.require("CopyImageSet", datastore_id=request.datastore_id, image_set_id=request.source_image_set_id)
        if request.destination_image_set_id is not None:
            guard.require(
                "CopyImageSet", datastore_id=request.datastore_id, image_set_id=request.destination_image_set_id
            )

        def work(uow: UnitOfWork) -> tuple[ImageSet, ImageSet, CopyPlan, int, bool]:
            source = load_image_set(uow, request.datastore_id, request.source_image_set_id)
            if source.version_id != request.source_latest_version_id:
                raise ConflictError(
                    f"latestVersionId {request.source_latest_version_id} is not the latest version of image set "
                    f"{source.image_set_id} (it is {source.version_id})"
                )
            selected = select(
                load_document(self._blobs, current(uow, source)), parse_copiable(request.copiable_attributes)
            )
            destination, is_primary = self._destination(uow, request, source, selected)
            if destination is not None:
                expected = request.destination_latest_version_id if request.destination_image_set_id else None
                base = load_document(self._blobs, current(uow, destination))
                plan = copy_into(
                    selected,
                    base,
                    datastore_id=request.datastore_id,
                    destination_id=destination.image_set_id,
                    force=request.force,
                    max_frames=self._max_frames,
                )
                document.check_size(plan.document, self._max_metadata)
                locked_source = self._locks.lock(
                    uow, source, None, ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS
                )
                locked_destination = self._locks.lock(
                    uow, destination, expected, ImageSetWorkflowStatus.COPYING, source_image_set_id=source.image_set_id
                )
                return locked_source, locked_destination, plan, destination.version_id + 1, is_primary
            destination_id = new_id()
            plan = copy_into(
                selected,
                None,
                datastore_id=request.datastore_id,
                destination_id=destination_id,
                force=request.force,
                max_frames=self._max_frames,
            )
            document.check_size(plan.document, self._max_metadata)
            locked_source = self._locks.lock(uow, source, None, ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS)
            key = store_document(self._blobs, request.datastore_id, plan.document)
            now = self._locks.now()
            write_version(
                uow,
                NewVersion.of(
                    plan.document,
                    datastore_id=request.datastore_id,
                    image_set_id=destination_id,
                    version_id=1,
                    metadata_key=key,
                    workflow_status=ImageSetWorkflowStatus.COPYING,
                    is_primary=is_primary,
                    grouping=plan.grouping,
                    created_at=now,
                ),
                now,
            )
            created = load_image_set(uow, request.datastore_id, destination_id)
            locked_destination = self._locks.lock(
                uow,
                created,
                None,
                ImageSetWorkflowStatus.COPYING,
                count_quota=False,
                source_image_set_id=source.image_set_id,
            )
            return locked_source, locked_destination, plan, 1, is_primary

        source, destination, plan, version_id, is_primary = self._index.run(work)
        self._access.accessed(source.datastore_id, source.image_set_id)
        if version_id > 1:  # an existing destination is accessed too (a new one starts in frequent access)
            self._access.accessed(destination.datastore_id, destination.image_set_id)
        self._locks.finish_later(
            [source, destination],
            lambda: self._finish(source, destination, plan, version_id, is_primary),
            lambda message: self._fail(source, destination, message),
        )
        return CopyAccepted(source, destination, version_id)

    def _finish(self, source: ImageSet, destination: ImageSet, plan: CopyPlan, version_id: int, primary: bool) -> None:
        key = store_document(self._blobs, destination.datastore_id, plan.document) if version_id > 1 else None

        def work(uow: UnitOfWork) -> None:
            shared = {f.frame_id: f for f in uow.image_sets.list_frames(source.datastore_id, source.image_set_id)}
            uow.image_sets.add_frames(
                [
                    FrameRef(
                        destination.datastore_id,
                        destination.image_set_id,
                        frame_id,
                        ref.stored_transfer_syntax,
                        ref.size,
                    )
                    for frame_id in sorted(plan.copied_frame_ids)
                    if (ref := shared.get(frame_id)) is not None
                ]
            )
            now = self._locks.now()
            if key is not None:
                write_version(
                    uow,
                    NewVersion.of(
                        plan.document,
                        datastore_id=destination.datastore_id,
                        image_set_id=destination.image_set_id,
                        version_id=version_id,
                        metadata_key=key,
                        workflow_status=ImageSetWorkflowStatus.COPIED,
                        is_primary=primary,
                        grouping=plan.grouping,
                        created_at=destination.created_at,
                    ),
                    now,
                )
            else:  # a new destination: its first version was written locked; mark it copied
                first = uow.image_sets.get_version(destination.datastore_id, destination.image_set_id, 1)
                if first is not None:
                    uow.image_sets.update_version(
                        replace(first, workflow_status=ImageSetWorkflowStatus.COPIED, updated_at=now)
                    )
                self._locks.unlock(uow, destination, ImageSetWorkflowStatus.COPIED)
            self._locks.unlock(uow, source, ImageSetWorkflowStatus.COPIED)

        self._index.run(work)

    def _fail(self, source: ImageSet, destination: ImageSet, message: str) -> None:
        def work(uow: UnitOfWork) -> None:
            self._locks.unlock(uow, destination, ImageSetWorkflowStatus.COPY_FAILED, message)
            self._locks.unlock(uow, source, ImageSetWorkflowStatus.COPY_FAILED, message)

        self._index.run(work)
