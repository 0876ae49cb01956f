"""``SqlStorageTierRepository``: storage tiers of image sets (guide 23009-23052, ``openhi.tiers``).

The tier, the last access and when the tier last changed are three columns of ``image_sets`` (migration 0010)
that ``image_sets.py`` reads but never writes: only this module does. Recording accesses is one batched
``UPDATE ... SET last_accessed_at = :at WHERE last_accessed_at IS NULL OR last_accessed_at < :at``, so an older
access never overwrites a newer one whatever order processes flush in. Moves between tiers are compare-and-set
updates, safe with any number of sweeping processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, tuple_, update

from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus, StorageTier
from openhi.index.port import ImageSetAccess
from openhi.index.sql.image_set_search import IN_CLAUSE_CHUNK
from openhi.index.sql.image_sets import DELETED_IMAGE_SET, _image_set, used_elsewhere
from openhi.index.sql.schema import image_set_frames, image_set_versions, image_sets

FREQUENT = StorageTier.FREQUENT_ACCESS.value
ARCHIVE = StorageTier.ARCHIVE_INSTANT_ACCESS.value

_RECORD_ACCESS = (
    update(image_sets)
    .where(
        image_sets.c.datastore_id == bindparam("ds"),
        image_sets.c.image_set_id == bindparam("id"),
        or_(image_sets.c.last_accessed_at.is_(None), image_sets.c.last_accessed_at < bindparam("at")),
    )
    .values(last_accessed_at=bindparam("at"))
)


def _idle_before(cutoff: datetime) -> Any:
    """Not accessed since before ``cutoff``: the last access, or the creation when never accessed."""
    last = image_sets.c.last_accessed_at
    return or_(last < cutoff, and_(last.is_(None), image_sets.c.created_at < cutoff))


@dataclass(frozen=True)
class SqlStorageTierRepository:
    """``StorageTierRepository`` on one connection."""

    conn: Connection

    def record_access(self, accesses: Sequence[ImageSetAccess]) -> list[tuple[str, str]]:
        if not accesses:
            return []
        rows = [{"ds": a.datastore_id, "id": a.image_set_id, "at": a.at} for a in accesses]
        self.conn.execute(_RECORD_ACCESS, rows)
        keys = list(dict.fromkeys((a.datastore_id, a.image_set_id) for a in accesses))
        archived: set[tuple[str, str]] = set()
        for start in range(0, len(keys), IN_CLAUSE_CHUNK):
            chunk = keys[start : start + IN_CLAUSE_CHUNK]
            query = select(image_sets.c.datastore_id, image_sets.c.image_set_id).where(
                tuple_(image_sets.c.datastore_id, image_sets.c.image_set_id).in_(chunk),
                image_sets.c.storage_tier == ARCHIVE,
                image_sets.c.state != DELETED_IMAGE_SET,
            )
            archived.update((str(ds), str(image_set)) for ds, image_set in self.conn.execute(query))
        return [key for key in keys if key in archived]

    def idle(self, cutoff: datetime, after: tuple[str, str] | None, limit: int) -> list[ImageSet]:
        query = select(image_sets).where(
            image_sets.c.storage_tier == FREQUENT,
            image_sets.c.state == ImageSetState.ACTIVE.value,
            _idle_before(cutoff),
        )
        if after is not None:
            query = query.where(tuple_(image_sets.c.datastore_id, image_sets.c.image_set_id) > tuple_(*after))
        query = query.order_by(image_sets.c.datastore_id, image_sets.c.image_set_id).limit(max(limit, 0))
        return [_image_set(row) for row in self.conn.execute(query)]

    def accessed_while_archived(self, limit: int) -> list[ImageSet]:
        changed = image_sets.c.tier_changed_at
        query = (
            select(image_sets)
            .where(
                image_sets.c.storage_tier == ARCHIVE,
                image_sets.c.state != DELETED_IMAGE_SET,
                image_sets.c.last_accessed_at.is_not(None),
                or_(changed.is_(None), image_sets.c.last_accessed_at > changed),
            )
            .order_by(image_sets.c.datastore_id, image_sets.c.image_set_id)
            .limit(max(limit, 0))
        )
        return [_image_set(row) for row in self.conn.execute(query)]

    def archive(self, datastore_id: str, image_set_id: str, version_id: int, cutoff: datetime, at: datetime) -> bool:
        result = self.conn.execute(
            update(image_sets)
            .where(
                image_sets.c.datastore_id == datastore_id,
                image_sets.c.image_set_id == image_set_id,
                image_sets.c.storage_tier == FREQUENT,
                image_sets.c.state == ImageSetState.ACTIVE.value,
                image_sets.c.version_id == version_id,
                _idle_before(cutoff),
            )
            .values(storage_tier=ARCHIVE, tier_changed_at=at)
        )
        return result.rowcount == 1

    def restore(self, datastore_id: str, image_set_id: str, at: datetime) -> bool:
        result = self.conn.execute(
            update(image_sets)
            .where(
                image_sets.c.datastore_id == datastore_id,
                image_sets.c.image_set_id == image_set_id,
                image_sets.c.storage_tier == ARCHIVE,
                image_sets.c.state != DELETED_IMAGE_SET,
                image_sets.c.workflow_status != ImageSetWorkflowStatus.DELETING.value,
            )
            .values(storage_tier=FREQUENT, tier_changed_at=at)
        )
        return result.rowcount == 1

    def held_elsewhere(
        self, datastore_id: str, image_set_id: str, tier: StorageTier, frame_ids: Sequence[str], keys: Sequence[str]
    ) -> set[str]:
        return self._held(image_set_frames, "frame_id", datastore_id, image_set_id, tier, frame_ids) | self._held(
            image_set_versions, "metadata_key", datastore_id, image_set_id, tier, keys
        )

    def _held(
        self, table: Any, column: str, datastore_id: str, image_set_id: str, tier: StorageTier, values: Sequence[str]
    ) -> set[str]:
        """Those of ``values`` in ``table.column`` for another, not deleted image set of the data store in ``tier``."""
        tier_is = image_sets.c.storage_tier == tier.value
        return used_elsewhere(self.conn, table, column, datastore_id, image_set_id, values, tier_is)
