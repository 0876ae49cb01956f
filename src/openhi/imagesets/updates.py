"""UpdateImageSetMetadata (guide 6922-7873): patch or revert, as a new immutable version, asynchronously.

The patch is validated and applied to the latest document before anything is locked, so constraint
violations (guide 22644-22671, 6949-6990; see ``imagesets.patch``) answer ValidationException at once. Then
the image set (and, with ``includeStudyImageSets``, every other primary image set of its study, atomically) is
locked UPDATING and the answer carries the next version id; the new documents are stored and the versions
written in the background, in one unit of work, after which each image set is ACTIVE / UPDATED (or
UPDATE_FAILED with a message). ``revertToVersionId`` makes a new version whose document is that version's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openhi.access import guard
from openhi.blobs.port import BlobStore
from openhi.errors import NotFoundError, ValidationError
from openhi.imagesets import document
from openhi.imagesets.copy import grouping_of
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetWorkflowStatus
from openhi.imagesets.patch import MAX_PATCH_BYTES, apply_updates, parse_patch
from openhi.imagesets.service import load_image_set
from openhi.imagesets.versions import NewVersion, current, load_document, store_document, write_version
from openhi.index.port import Index, UnitOfWork
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder


@dataclass(frozen=True)
class UpdateRequest:
    """UpdateImageSetMetadata's inputs (validated against the model)."""

    datastore_id: str
    image_set_id: str
    latest_version_id: int
    updates: dict[str, Any]
    force: bool = False
    include_study_image_sets: bool = False


@dataclass(frozen=True)
class UpdateAccepted:
    """The synchronous answer: the image set locked, and the version the update will create."""

    image_set: ImageSet
    next_version_id: int


class ImageSetUpdates:
    """UpdateImageSetMetadata."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        locks: Locks,
        *,
        max_payload_bytes: int = MAX_PATCH_BYTES,
        max_metadata_bytes: int = document.MAX_METADATA_BYTES,
        access: AccessRecorder = NO_ACCESS_RECORDING,
    ) -> None:
        self._index = index
        self._blobs = blobs
        self._locks = locks
        self._max_payload = max_payload_bytes  # guide 22770 (adjustable): the patch, ValidationException beyond
        self._max_metadata = max_metadata_bytes  # guide 22775 (adjustable): ServiceQuotaExceededException beyond
        self._access = access  # storage tiers: an update is an access of each image set it updates (guide 23029)

    def _new_document(self, uow: UnitOfWork, image_set: ImageSet, request: UpdateRequest) -> dict[str, Any]:
        revert = request.updates.get("revertToVersionId")
        if revert is not None:
            version = uow.image_sets.get_version(image_set.datastore_id, image_set.image_set_id, int(revert))
            if version is None:
                raise NotFoundError(f"Image set {image_set.image_set_id} has no version {revert}")
            return load_document(self._blobs, version)
        dicom = request.updates.get("DICOMUpdates") or {}
        updatable = dicom.get("updatableAttributes")
        removable = dicom.get("removableAttributes")
        if updatable is None and removable is None:
            raise ValidationError("DICOMUpdates needs updatableAttributes or removableAttributes", field="DICOMUpdates")
        result = apply_updates(
            load_document(self._blobs, current(uow, image_set)),
            parse_patch(updatable, "updatableAttributes", self._max_payload) if updatable is not None else None,
            parse_patch(removable, "removableAttributes", self._max_payload) if removable is not None else None,
            force=request.force,
            is_primary=image_set.is_primary,
        )
        return result.document

    def update(self, request: UpdateRequest) -> UpdateAccepted:
        """Validate, lock, answer; the new versions are written in the background."""
        guard.require("UpdateImageSetMetadata", datastore_id=request.datastore_id, image_set_id=request.image_set_id)

        def work(uow: UnitOfWork) -> list[tuple[ImageSet, dict[str, Any]]]:
            main = load_image_set(uow, request.datastore_id, request.image_set_id)
            targets = [main]
            if request.include_study_image_sets and main.is_primary and main.grouping.study_instance_uid:
                others = uow.image_sets.primary_in_study(request.datastore_id, main.grouping.study_instance_uid)
                targets += [other for other in others if other.image_set_id != main.image_set_id]
            planned = []
            for target in targets:
                new = self._new_document(uow, target, request)
                new["ImageSetID"], new["DatastoreID"] = target.image_set_id, target.datastore_id
                document.check_size(new, self._max_metadata)
                expected = request.latest_version_id if target is main else None
                planned.append((self._locks.lock(uow, target, expected, ImageSetWorkflowStatus.UPDATING), new))
            return planned

        planned = self._index.run(work)
        for image_set, _ in planned:
            self._access.accessed(image_set.datastore_id, image_set.image_set_id)
        self._locks.finish_later(
            [image_set for image_set, _ in planned], lambda: self._write(planned), lambda m: self._fail(planned, m)
        )
        return UpdateAccepted(planned[0][0], planned[0][0].version_id + 1)

    def _write(self, planned: list[tuple[ImageSet, dict[str, Any]]]) -> None:
        keys = [store_document(self._blobs, image_set.datastore_id, doc) for image_set, doc in planned]

        def work(uow: UnitOfWork) -> None:
            now = self._locks.now()
            for (image_set, doc), key in zip(planned, keys, strict=True):
                write_version(
                    uow,
                    NewVersion.of(
                        doc,
                        datastore_id=image_set.datastore_id,
                        image_set_id=image_set.image_set_id,
                        version_id=image_set.version_id + 1,
                        metadata_key=key,
                        workflow_status=ImageSetWorkflowStatus.UPDATED,
                        is_primary=image_set.is_primary,
                        grouping=grouping_of(doc),
                        created_at=image_set.created_at,
                    ),
                    now,
                )

        self._index.run(work)

    def _fail(self, planned: list[tuple[ImageSet, dict[str, Any]]], message: str) -> None:
        def work(uow: UnitOfWork) -> None:
            for image_set, _ in planned:
                self._locks.unlock(uow, image_set, ImageSetWorkflowStatus.UPDATE_FAILED, message)

        self._index.run(work)
