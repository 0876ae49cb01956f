"""``MemoryImageSetRepository``: image sets, versions and frames over ``MemoryState``.

Mirrors ``sql/image_sets.py``: an image set belongs to a data store that exists, a version to an image set
that exists, frames to a data store that exists; violations raise ``ConflictError`` and change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from openhi.errors import ConflictError
from openhi.imagesets.model import FrameRef, ImageSet, ImageSetState, ImageSetVersion, ImageSetWorkflowStatus
from openhi.index import memory_counters, memory_search
from openhi.index.memory_state import MemoryImageSet, MemoryState, utc
from openhi.search.criteria import SearchCursor, SearchQuery


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

    def primary_with_version(
        self, datastore_id: str, series_instance_uid: str
    ) -> tuple[ImageSet, ImageSetVersion] | None:
        found = self.find_primary(datastore_id, series_instance_uid)
        return None if found is None else self._with_version(found)

    def get_with_version(self, datastore_id: str, image_set_id: str) -> tuple[ImageSet, ImageSetVersion] | None:
        found = self.get(datastore_id, image_set_id)
        return None if found is None else self._with_version(found)

    def _with_version(self, image_set: ImageSet) -> tuple[ImageSet, ImageSetVersion] | None:
        version = self.get_version(image_set.datastore_id, image_set.image_set_id, image_set.version_id)
        return None if version is None else (image_set, version)  # as the SQL inner join

    def add(self, image_set: ImageSet) -> None:
        key = (image_set.datastore_id, image_set.image_set_id)
        if key in self.state.image_sets or image_set.datastore_id not in self.state.datastores:
            raise ConflictError(
                f"Image set {image_set.image_set_id} already exists or its data store is not in the index"
            )
        self.state.image_sets[key] = MemoryImageSet.of(image_set)
        memory_counters.record_image_set(self.state, *key, None)

    def update(self, image_set: ImageSet) -> None:
        key = (image_set.datastore_id, image_set.image_set_id)
        current = self.state.image_sets.get(key)
        if current is not None:  # as SQL UPDATE: no row, no change (and the storage tier columns stay)
            before = memory_counters.image_set_usage(self.state, *key)
            self.state.image_sets[key] = MemoryImageSet.of(image_set).keeping_tier(current)
            memory_counters.record_image_set(self.state, *key, before)

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
            key = (frame.datastore_id, frame.image_set_id, frame.frame_id)
            if key not in self.state.image_set_frames:
                self.state.image_set_frames[key] = frame
                memory_counters.add_frame_bytes(self.state, frame.datastore_id, frame.image_set_id, frame.size)

    def get_frame(self, datastore_id: str, image_set_id: str, frame_id: str) -> FrameRef | None:
        return self.state.image_set_frames.get((datastore_id, image_set_id, frame_id))

    # -- search --------------------------------------------------------------------------------------------

    def search(self, datastore_id: str, query: SearchQuery, after: SearchCursor | None, limit: int) -> list[ImageSet]:
        return memory_search.search(self.state, datastore_id, query, after, limit)

    def study_counts(self, datastore_id: str, study_uids: Sequence[str]) -> dict[str, tuple[int, int]]:
        return memory_search.study_counts(self.state, datastore_id, study_uids)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def set_state(
        self,
        datastore_id: str,
        image_set_id: str,
        expected_version: int,
        expected_states: Sequence[ImageSetState],
        state: ImageSetState,
        workflow_status: ImageSetWorkflowStatus,
        message: str | None,
        at: datetime,
    ) -> bool:
        row = self.state.image_sets.get((datastore_id, image_set_id))
        if row is None or row.version_id != expected_version or row.state not in set(expected_states):
            return False
        before = memory_counters.image_set_usage(self.state, datastore_id, image_set_id)
        row.state, row.workflow_status, row.message, row.updated_at = state, workflow_status, message, utc(at)
        memory_counters.record_image_set(self.state, datastore_id, image_set_id, before)
        return True

    def update_version(self, version: ImageSetVersion) -> None:
        key = (version.datastore_id, version.image_set_id, version.version_id)
        current = self.state.image_set_versions.get(key)
        if current is not None:
            self.state.image_set_versions[key] = replace(
                current,
                state=version.state,
                workflow_status=version.workflow_status,
                message=version.message,
                updated_at=utc(version.updated_at),
            )

    def list_frames(self, datastore_id: str, image_set_id: str) -> list[FrameRef]:
        frames = [
            frame
            for (owner, of, _), frame in self.state.image_set_frames.items()
            if owner == datastore_id and of == image_set_id
        ]
        return sorted(frames, key=lambda frame: frame.frame_id)

    def _live_elsewhere(self, datastore_id: str, image_set_id: str, other: str) -> bool:
        row = self.state.image_sets.get((datastore_id, other))
        return other != image_set_id and row is not None and row.state != ImageSetState.DELETED

    def frames_used_elsewhere(self, datastore_id: str, image_set_id: str, frame_ids: Sequence[str]) -> set[str]:
        wanted = set(frame_ids)
        return {
            frame_id
            for (owner, of, frame_id) in self.state.image_set_frames
            if owner == datastore_id and frame_id in wanted and self._live_elsewhere(datastore_id, image_set_id, of)
        }

    def metadata_keys_used_elsewhere(self, datastore_id: str, image_set_id: str, keys: Sequence[str]) -> set[str]:
        wanted = set(keys)
        return {
            version.metadata_key
            for (owner, of, _), version in self.state.image_set_versions.items()
            if owner == datastore_id
            and version.metadata_key in wanted
            and self._live_elsewhere(datastore_id, image_set_id, of)
        }

    def delete_frames(self, datastore_id: str, image_set_id: str) -> None:
        for key in [k for k in self.state.image_set_frames if k[0] == datastore_id and k[1] == image_set_id]:
            del self.state.image_set_frames[key]
        memory_counters.clear_frame_bytes(self.state, datastore_id, image_set_id)

    def count_locked(self, datastore_id: str, workflow_status: ImageSetWorkflowStatus | None = None) -> int:
        return sum(
            1
            for (owner, _), row in self.state.image_sets.items()
            if owner == datastore_id
            and row.state == ImageSetState.LOCKED
            and (workflow_status is None or row.workflow_status == workflow_status)
        )

    def locked_before(self, cutoff: datetime) -> list[ImageSet]:
        return [
            row.image_set(owner, image_set_id)
            for (owner, image_set_id), row in self.state.image_sets.items()
            if row.state == ImageSetState.LOCKED and row.updated_at is not None and row.updated_at < cutoff
        ]

    def primary_in_study(self, datastore_id: str, study_instance_uid: str) -> list[ImageSet]:
        found = [
            row.image_set(owner, image_set_id)
            for (owner, image_set_id), row in self.state.image_sets.items()
            if owner == datastore_id
            and row.grouping.study_instance_uid == study_instance_uid
            and row.is_primary
            and row.state in (ImageSetState.ACTIVE, ImageSetState.LOCKED)
        ]
        return sorted(found, key=lambda image_set: (image_set.created_at, image_set.image_set_id))

    def primary_in_study_with_versions(
        self, datastore_id: str, study_instance_uid: str
    ) -> list[tuple[ImageSet, ImageSetVersion]]:
        pairs = (self._with_version(image_set) for image_set in self.primary_in_study(datastore_id, study_instance_uid))
        return [pair for pair in pairs if pair is not None]
