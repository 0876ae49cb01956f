"""``MemoryStorageTierRepository``: storage tiers of image sets over ``MemoryState`` (the contract reference).

Mirrors ``sql/tiers.py``: the tier, the last access and when the tier changed are fields of the image set row
(``MemoryImageSet``), written only here; moves are compare-and-set (guide 23009-23052, ``openhi.tiers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus, StorageTier
from openhi.index.memory_state import MemoryImageSet, MemoryState, utc
from openhi.index.port import ImageSetAccess


def _idle_since(row: MemoryImageSet) -> datetime:
    return row.last_accessed_at if row.last_accessed_at is not None else row.created_at


@dataclass(frozen=True)
class MemoryStorageTierRepository:
    """``StorageTierRepository`` over the state."""

    state: MemoryState

    def record_access(self, accesses: Sequence[ImageSetAccess]) -> list[tuple[str, str]]:
        archived: list[tuple[str, str]] = []
        for access in accesses:
            key = (access.datastore_id, access.image_set_id)
            row = self.state.image_sets.get(key)
            if row is None:
                continue
            at = utc(access.at)
            if row.last_accessed_at is None or row.last_accessed_at < at:
                row.last_accessed_at = at
            if (
                row.storage_tier == StorageTier.ARCHIVE_INSTANT_ACCESS
                and row.state != ImageSetState.DELETED
                and key not in archived
            ):
                archived.append(key)
        return archived

    def idle(self, cutoff: datetime, after: tuple[str, str] | None, limit: int) -> list[ImageSet]:
        found = sorted(
            key
            for key, row in self.state.image_sets.items()
            if row.storage_tier == StorageTier.FREQUENT_ACCESS
            and row.state == ImageSetState.ACTIVE
            and _idle_since(row) < cutoff
            and (after is None or key > after)
        )
        return [self.state.image_sets[key].image_set(*key) for key in found[: max(limit, 0)]]

    def accessed_while_archived(self, limit: int) -> list[ImageSet]:
        found = sorted(
            key
            for key, row in self.state.image_sets.items()
            if row.storage_tier == StorageTier.ARCHIVE_INSTANT_ACCESS
            and row.state != ImageSetState.DELETED
            and row.last_accessed_at is not None
            and (row.tier_changed_at is None or row.last_accessed_at > row.tier_changed_at)
        )
        return [self.state.image_sets[key].image_set(*key) for key in found[: max(limit, 0)]]

    def archive(self, datastore_id: str, image_set_id: str, version_id: int, cutoff: datetime, at: datetime) -> bool:
        row = self.state.image_sets.get((datastore_id, image_set_id))
        if (
            row is None
            or row.storage_tier != StorageTier.FREQUENT_ACCESS
            or row.state != ImageSetState.ACTIVE
            or row.version_id != version_id
            or not _idle_since(row) < cutoff
        ):
            return False
        row.storage_tier, row.tier_changed_at = StorageTier.ARCHIVE_INSTANT_ACCESS, utc(at)
        return True

    def restore(self, datastore_id: str, image_set_id: str, at: datetime) -> bool:
        row = self.state.image_sets.get((datastore_id, image_set_id))
        if (
            row is None
            or row.storage_tier != StorageTier.ARCHIVE_INSTANT_ACCESS
            or row.state == ImageSetState.DELETED
            or row.workflow_status == ImageSetWorkflowStatus.DELETING
        ):
            return False
        row.storage_tier, row.tier_changed_at = StorageTier.FREQUENT_ACCESS, utc(at)
        return True

    def held_elsewhere(
        self, datastore_id: str, image_set_id: str, tier: StorageTier, frame_ids: Sequence[str], keys: Sequence[str]
    ) -> set[str]:
        def holds(other: str) -> bool:
            row = self.state.image_sets.get((datastore_id, other))
            return (
                other != image_set_id
                and row is not None
                and row.state != ImageSetState.DELETED
                and row.storage_tier == tier
            )

        wanted_frames, wanted_keys = set(frame_ids), set(keys)
        held = {
            frame_id
            for (owner, of, frame_id) in self.state.image_set_frames
            if owner == datastore_id and frame_id in wanted_frames and holds(of)
        }
        held |= {
            version.metadata_key
            for (owner, of, _), version in self.state.image_set_versions.items()
            if owner == datastore_id and version.metadata_key in wanted_keys and holds(of)
        }
        return held
