"""``MemoryImageSetRepository``: image sets, versions and frames over ``MemoryState``.

Mirrors ``sql/image_sets.py``: an image set belongs to a data store that exists, a version to an image set
that exists, frames to a data store that exists; violations raise ``ConflictError`` and change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from openhi.errors import ConflictError
from openhi.imagesets.model import FrameRef, ImageSet, ImageSetState, ImageSetVersion
from openhi.index.memory_state import MemoryImageSet, MemoryState, utc


@dataclass(frozen=True)
class MemoryImageSetRepository:
    """``ImageSetRepository`` over the state."""

    state: MemoryState

    def exists(self, datastore_id: str, image_set_id: str) -> bool:
        row = self.state.image_sets.get((datastore_id, image_set_id))
        return row is not None and row.state != ImageSetState.DELETED

    def count_in_datastore(self, datastore_id: str) -> int:
        return sum(
            1
            for (owner, _), row in self.state.image_sets.items()
            if owner == datastore_id and row.state != ImageSetState.DELETED
        )

    def get(self, datastore_id: str, image_set_id: str) -> ImageSet | None:
        row = self.state.image_sets.get((datastore_id, image_set_id))
        return None if row is None else row.image_set(datastore_id, image_set_id)

    def find_primary(self, datastore_id: str, series_instance_uid: str) -> ImageSet | None:
        candidates = [
            row.image_set(owner, image_set_id)
            for (owner, image_set_id), row in self.state.image_sets.items()
            if owner == datastore_id
            and row.grouping.series_instance_uid == series_instance_uid
            and row.is_primary
            and row.state != ImageSetState.DELETED
        ]
        # The oldest, should there be two (as the SQL adapter).
        return min(candidates, key=lambda s: (s.created_at, s.image_set_id), default=None)

    def add(self, image_set: ImageSet) -> None:
        key = (image_set.datastore_id, image_set.image_set_id)
        if key in self.state.image_sets or image_set.datastore_id not in self.state.datastores:
            raise ConflictError(
                f"Image set {image_set.image_set_id} already exists or its data store is not in the index"
            )
        self.state.image_sets[key] = MemoryImageSet.of(image_set)

    def update(self, image_set: ImageSet) -> None:
        key = (image_set.datastore_id, image_set.image_set_id)
        if key in self.state.image_sets:  # as SQL UPDATE: no row, no change
            self.state.image_sets[key] = MemoryImageSet.of(image_set)

    def add_version(self, version: ImageSetVersion) -> None:
        key = (version.datastore_id, version.image_set_id, version.version_id)
        if key in self.state.image_set_versions or key[:2] not in self.state.image_sets:
            raise ConflictError(
                f"Version {version.version_id} of image set {version.image_set_id} already exists "
                "or the image set is not in the index"
            )
        self.state.image_set_versions[key] = replace(
            version, created_at=utc(version.created_at), updated_at=utc(version.updated_at)
        )

    def get_version(self, datastore_id: str, image_set_id: str, version_id: int) -> ImageSetVersion | None:
        return self.state.image_set_versions.get((datastore_id, image_set_id, version_id))

    def list_versions(
        self, datastore_id: str, image_set_id: str, before_version: int | None, limit: int
    ) -> list[ImageSetVersion]:
        versions = [
            version
            for (owner, of, number), version in self.state.image_set_versions.items()
            if owner == datastore_id and of == image_set_id and (before_version is None or number < before_version)
        ]
        versions.sort(key=lambda v: v.version_id, reverse=True)
        return versions[: max(limit, 0)]

    def add_frames(self, frames: Sequence[FrameRef]) -> None:
        if any(frame.datastore_id not in self.state.datastores for frame in frames):
            raise ConflictError("The data store of the frames is not in the index")
        for frame in frames:
            self.state.image_set_frames.setdefault((frame.datastore_id, frame.image_set_id, frame.frame_id), frame)

    def get_frame(self, datastore_id: str, image_set_id: str, frame_id: str) -> FrameRef | None:
        return self.state.image_set_frames.get((datastore_id, image_set_id, frame_id))
