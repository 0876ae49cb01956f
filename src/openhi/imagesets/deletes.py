"""DeleteImageSet (guide 8586-8866): LOCKED / DELETING at once, then DELETED once its bytes are released.

Frames and metadata documents are shared between image sets (copies share frame blobs; equal documents share
a key), so the background work removes only the blobs that no other not-deleted image set of the data store
still references — a delete never removes bytes another image set uses. The image set row stays, DELETED with
``deletedAt``, so GetImageSet keeps answering for it (as HealthImaging does) while every other read and write
answers ResourceNotFoundException.
"""

from __future__ import annotations

from dataclasses import replace

from openhi.access import guard
from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.events import emit
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.imagesets.service import load_image_set
from openhi.index.port import Index, UnitOfWork

ALL_VERSIONS = 1_000_000


class ImageSetDeletes:
    """DeleteImageSet."""

    def __init__(self, index: Index, blobs: BlobStore, locks: Locks) -> None:
        self._index = index
        self._blobs = blobs
        self._locks = locks

    def delete(self, datastore_id: str, image_set_id: str) -> ImageSet:
        """Lock the image set DELETING and release it in the background."""
        guard.require("DeleteImageSet", datastore_id=datastore_id, image_set_id=image_set_id)

        def work(uow: UnitOfWork) -> ImageSet:
            image_set = load_image_set(uow, datastore_id, image_set_id)
            return self._locks.lock(uow, image_set, None, ImageSetWorkflowStatus.DELETING)

        locked = self._index.run(work)
        self._locks.finish_later([locked], lambda: self.release(locked), lambda message: self._fail(locked, message))
        return locked

    def release(self, image_set: ImageSet) -> None:
        """Remove the blobs nobody else uses, then mark the image set DELETED (idempotent, re-runnable)."""
        ds_id, is_id = image_set.datastore_id, image_set.image_set_id

        def unused(uow: UnitOfWork) -> tuple[list[str], list[str]]:
            frames = [frame.frame_id for frame in uow.image_sets.list_frames(ds_id, is_id)]
            versions = uow.image_sets.list_versions(ds_id, is_id, None, ALL_VERSIONS)
            documents = sorted({version.metadata_key for version in versions})
            shared_frames = uow.image_sets.frames_used_elsewhere(ds_id, is_id, frames)
            shared_documents = uow.image_sets.metadata_keys_used_elsewhere(ds_id, is_id, documents)
            return [f for f in frames if f not in shared_frames], [d for d in documents if d not in shared_documents]

        frames, documents = self._index.run(unused, readonly=True)
        for frame_id in frames:
            self._blobs.delete(keys.frame(ds_id, frame_id))
        for key in documents:
            self._blobs.delete(key)

        def finish(uow: UnitOfWork) -> None:
            now = self._locks.now()
            uow.image_sets.delete_frames(ds_id, is_id)
            uow.catalog.remove_image_set(ds_id, is_id)  # QIDO-RS shows no deleted image set (guide 2214)
            row = uow.image_sets.get(ds_id, is_id) or image_set
            emit.replace_image_set(
                uow,
                row,
                replace(
                    row,
                    state=ImageSetState.DELETED,
                    workflow_status=ImageSetWorkflowStatus.DELETED,
                    updated_at=now,
                    deleted_at=now,
                ),
            )

        self._index.run(finish)

    def _fail(self, image_set: ImageSet, message: str) -> None:
        self._index.run(lambda uow: self._locks.unlock(uow, image_set, ImageSetWorkflowStatus.DELETING, message))
