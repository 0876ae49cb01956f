"""``SqlImageSetRepository``: image sets, their immutable versions and their frames on one connection.

The ``image_sets`` row mirrors the latest version; its ``GroupingKey`` is spread over seven columns so that
the import can find the primary image set of a series with an index, and its ``ImageSetSummary`` over eight
more plus ``study_datetime`` for SearchImageSets (``image_set_search.py``). Inserts that may hit a
constraint run in a savepoint, so a ``ConflictError`` leaves the unit of work usable (as
``SqlDatastoreRepository.add``). State changes of the lifecycle are compare-and-set updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Select, and_, bindparam, delete, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from openhi.dicom.normalize import GroupingKey
from openhi.errors import ConflictError
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetState,
    ImageSetSummary,
    ImageSetVersion,
    ImageSetWorkflowStatus,
    StorageTier,
)
from openhi.index.sql import counters, image_set_search
from openhi.index.sql.schema import (
    GROUPING_COLUMNS,
    SUMMARY_COLUMNS,
    image_set_frames,
    image_set_versions,
    image_sets,
)
from openhi.search.criteria import SearchCursor, SearchQuery

DELETED_IMAGE_SET = ImageSetState.DELETED.value
LIVE_STATES = (ImageSetState.ACTIVE.value, ImageSetState.LOCKED.value)


def grouping_values(grouping: GroupingKey) -> dict[str, str | None]:
    """The seven grouping columns of a ``GroupingKey``."""
    return {name: getattr(grouping, name) for name in GROUPING_COLUMNS}


def _image_set_values(image_set: ImageSet) -> dict[str, Any]:
    return {
        "version_id": image_set.version_id,
        "state": image_set.state.value,
        "workflow_status": image_set.workflow_status.value,
        "is_primary": image_set.is_primary,
        "created_at": image_set.created_at,
        "updated_at": image_set.updated_at,
        "deleted_at": image_set.deleted_at,
        "message": image_set.message,
        **grouping_values(image_set.grouping),
        **summary_values(image_set.summary),
        "study_datetime": image_set.study_datetime,
    }


def summary_values(summary: ImageSetSummary | None) -> dict[str, Any]:
    """The summary columns (``SUMMARY_COLUMNS`` and ``instance_count``) of an image set's summary."""
    known = summary or ImageSetSummary()
    return {**{name: getattr(known, name) for name in SUMMARY_COLUMNS}, "instance_count": known.instance_count}


def _summary(mapping: Any) -> ImageSetSummary | None:
    summary = ImageSetSummary(
        **{name: mapping[name] for name in SUMMARY_COLUMNS}, instance_count=int(mapping["instance_count"] or 0)
    )
    return None if summary.is_empty else summary


def _image_set(row: Row[Any]) -> ImageSet:
    mapping = row._mapping
    return ImageSet(
        datastore_id=row.datastore_id,
        image_set_id=row.image_set_id,
        version_id=row.version_id,
        state=ImageSetState(row.state),
        workflow_status=ImageSetWorkflowStatus(row.workflow_status),
        is_primary=bool(row.is_primary),
        created_at=row.created_at,
        updated_at=row.updated_at,
        grouping=GroupingKey(**{name: mapping[name] for name in GROUPING_COLUMNS}),
        deleted_at=row.deleted_at,
        message=row.message,
        summary=_summary(mapping),
        storage_tier=StorageTier(row.storage_tier),  # the tier columns are written by tiers.py only
        last_accessed_at=row.last_accessed_at,
    )


def _frame(row: Row[Any]) -> FrameRef:
    return FrameRef(
        datastore_id=row.datastore_id,
        image_set_id=row.image_set_id,
        frame_id=row.frame_id,
        stored_transfer_syntax=row.stored_transfer_syntax,
        size=int(row.size),
    )


def _version(row: Row[Any], prefix: str = "") -> ImageSetVersion:
    """A version row; ``prefix`` names its columns when they sit beside an image set's (``_VERSION_LABELS``)."""
    mapping = row._mapping
    return ImageSetVersion(
        datastore_id=row.datastore_id,
        image_set_id=row.image_set_id,
        version_id=mapping[f"{prefix}version_id"],
        state=ImageSetState(mapping[f"{prefix}state"]),
        workflow_status=ImageSetWorkflowStatus(mapping[f"{prefix}workflow_status"]),
        is_primary=bool(mapping[f"{prefix}is_primary"]),
        created_at=mapping[f"{prefix}created_at"],
        updated_at=mapping[f"{prefix}updated_at"],
        metadata_key=mapping[f"{prefix}metadata_key"],
        message=mapping[f"{prefix}message"],
        job_id=mapping[f"{prefix}job_id"],
    )


# The version columns of a joined image set + latest version row, labelled apart from the image set's own.
_VERSION_LABELS = [
    column.label(f"version_{column.name}")
    for column in image_set_versions.c
    if column.name not in ("datastore_id", "image_set_id")
]


def _with_latest_version(*conditions: Any) -> Select[Any]:
    """Image set rows joined to their latest version row (primary key lookup), under ``conditions``."""
    latest = and_(
        image_set_versions.c.datastore_id == image_sets.c.datastore_id,
        image_set_versions.c.image_set_id == image_sets.c.image_set_id,
        image_set_versions.c.version_id == image_sets.c.version_id,
    )
    return select(image_sets, *_VERSION_LABELS).join(image_set_versions, latest).where(*conditions)


# Statements run on every DICOMweb read (and by imports and writes): built once, with bound parameters.
_OLDEST_FIRST = (image_sets.c.created_at, image_sets.c.image_set_id)  # should there be two primaries
_PRIMARY_OF_SERIES = (
    image_sets.c.datastore_id == bindparam("datastore_id"),
    image_sets.c.series_instance_uid == bindparam("series_instance_uid"),
    image_sets.c.is_primary == true(),  # "= true" (not "IS true"), so the index applies
    image_sets.c.state != DELETED_IMAGE_SET,
)
_PRIMARY_OF_STUDY = (
    image_sets.c.datastore_id == bindparam("datastore_id"),
    image_sets.c.study_instance_uid == bindparam("study_instance_uid"),
    image_sets.c.is_primary == true(),
    image_sets.c.state.in_(LIVE_STATES),
)
_FIND_PRIMARY = select(image_sets).where(*_PRIMARY_OF_SERIES).order_by(*_OLDEST_FIRST).limit(1)
_PRIMARY_WITH_VERSION = _with_latest_version(*_PRIMARY_OF_SERIES).order_by(*_OLDEST_FIRST).limit(1)
_GET_WITH_VERSION = _with_latest_version(
    image_sets.c.datastore_id == bindparam("datastore_id"), image_sets.c.image_set_id == bindparam("image_set_id")
)
_PRIMARY_IN_STUDY = select(image_sets).where(*_PRIMARY_OF_STUDY).order_by(*_OLDEST_FIRST)
_STUDY_WITH_VERSIONS = _with_latest_version(*_PRIMARY_OF_STUDY).order_by(*_OLDEST_FIRST)


def _image_set_and_version(row: Row[Any]) -> tuple[ImageSet, ImageSetVersion]:
    return _image_set(row), _version(row, prefix="version_")


def insert_ignoring_duplicates(conn: Connection, table: Any, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``, spelled the same on PostgreSQL and SQLite."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))


def execute_or_conflict(conn: Connection, statement: Executable, params: Any | None, message: str) -> None:
    """Run ``statement`` in a savepoint; a constraint violation becomes ``ConflictError(message)``."""
    try:
        with conn.begin_nested():
            conn.execute(statement, params)
    except IntegrityError as exc:
        raise ConflictError(message) from exc


@dataclass(frozen=True)
class SqlImageSetRepository:
    """``ImageSetRepository`` on one connection."""

    conn: Connection

    def exists(self, datastore_id: str, image_set_id: str) -> bool:
        query = select(image_sets.c.image_set_id).where(
            image_sets.c.datastore_id == datastore_id,
            image_sets.c.image_set_id == image_set_id,
            image_sets.c.state != DELETED_IMAGE_SET,
        )
        return self.conn.execute(query).first() is not None

    def count_in_datastore(self, datastore_id: str) -> int:
        query = (
            select(func.count())
            .select_from(image_sets)
            .where(image_sets.c.datastore_id == datastore_id, image_sets.c.state != DELETED_IMAGE_SET)
        )
        return int(self.conn.execute(query).scalar_one())

    def get(self, datastore_id: str, image_set_id: str) -> ImageSet | None:
        row = self.conn.execute(
            select(image_sets).where(
                image_sets.c.datastore_id == datastore_id, image_sets.c.image_set_id == image_set_id
            )
        ).one_or_none()
        return None if row is None else _image_set(row)

    def find_primary(self, datastore_id: str, series_instance_uid: str) -> ImageSet | None:
        params = {"datastore_id": datastore_id, "series_instance_uid": series_instance_uid}
        row = self.conn.execute(_FIND_PRIMARY, params).first()
        return None if row is None else _image_set(row)

    def primary_with_version(
        self, datastore_id: str, series_instance_uid: str
    ) -> tuple[ImageSet, ImageSetVersion] | None:
        params = {"datastore_id": datastore_id, "series_instance_uid": series_instance_uid}
        row = self.conn.execute(_PRIMARY_WITH_VERSION, params).first()
        return None if row is None else _image_set_and_version(row)

    def get_with_version(self, datastore_id: str, image_set_id: str) -> tuple[ImageSet, ImageSetVersion] | None:
        params = {"datastore_id": datastore_id, "image_set_id": image_set_id}
        row = self.conn.execute(_GET_WITH_VERSION, params).one_or_none()
        return None if row is None else _image_set_and_version(row)

    def add(self, image_set: ImageSet) -> None:
        values = {
            "datastore_id": image_set.datastore_id,
            "image_set_id": image_set.image_set_id,
            **_image_set_values(image_set),
        }
        execute_or_conflict(
            self.conn,
            insert(image_sets).values(values),
            None,
            f"Image set {image_set.image_set_id} already exists or its data store is not in the index",
        )
        counters.record_image_set(self.conn, image_set.datastore_id, image_set.image_set_id, None)

    def update(self, image_set: ImageSet) -> None:
        before = counters.image_set_usage_of(self.conn, image_set.datastore_id, image_set.image_set_id)
        self.conn.execute(
            update(image_sets)
            .where(
                image_sets.c.datastore_id == image_set.datastore_id,
                image_sets.c.image_set_id == image_set.image_set_id,
            )
            .values(_image_set_values(image_set))
        )
        counters.record_image_set(self.conn, image_set.datastore_id, image_set.image_set_id, before)

    def add_version(self, version: ImageSetVersion) -> None:
        values = {
            "datastore_id": version.datastore_id,
            "image_set_id": version.image_set_id,
            "version_id": version.version_id,
            "state": version.state.value,
            "workflow_status": version.workflow_status.value,
            "is_primary": version.is_primary,
            "created_at": version.created_at,
            "updated_at": version.updated_at,
            "metadata_key": version.metadata_key,
            "message": version.message,
            "job_id": version.job_id,
        }
        execute_or_conflict(
            self.conn,
            insert(image_set_versions).values(values),
            None,
            f"Version {version.version_id} of image set {version.image_set_id} already exists "
            "or the image set is not in the index",
        )

    def get_version(self, datastore_id: str, image_set_id: str, version_id: int) -> ImageSetVersion | None:
        row = self.conn.execute(
            select(image_set_versions).where(
                image_set_versions.c.datastore_id == datastore_id,
                image_set_versions.c.image_set_id == image_set_id,
                image_set_versions.c.version_id == version_id,
            )
        ).one_or_none()
        return None if row is None else _version(row)

    def list_versions(
        self, datastore_id: str, image_set_id: str, before_version: int | None, limit: int
    ) -> list[ImageSetVersion]:
        query = select(image_set_versions).where(
            image_set_versions.c.datastore_id == datastore_id,
            image_set_versions.c.image_set_id == image_set_id,
        )
        if before_version is not None:
            query = query.where(image_set_versions.c.version_id < before_version)
        query = query.order_by(image_set_versions.c.version_id.desc()).limit(max(limit, 0))
        return [_version(row) for row in self.conn.execute(query)]

    def add_frames(self, frames: Sequence[FrameRef]) -> None:
        if not frames:
            return
        rows = [
            {
                "datastore_id": frame.datastore_id,
                "image_set_id": frame.image_set_id,
                "frame_id": frame.frame_id,
                "stored_transfer_syntax": frame.stored_transfer_syntax,
                "size": frame.size,
            }
            for frame in frames
        ]
        added = counters.new_frame_bytes(self.conn, frames)  # before the insert, which ignores duplicates
        # executemany (batched by SQLAlchemy) rather than one VALUES list: no bound-parameter limit.
        statement = insert_ignoring_duplicates(
            self.conn, image_set_frames, ["datastore_id", "image_set_id", "frame_id"]
        )
        execute_or_conflict(self.conn, statement, rows, "The data store of the frames is not in the index")
        counters.add_frame_bytes(self.conn, added)

    def get_frame(self, datastore_id: str, image_set_id: str, frame_id: str) -> FrameRef | None:
        row = self.conn.execute(
            select(image_set_frames).where(
                image_set_frames.c.datastore_id == datastore_id,
                image_set_frames.c.image_set_id == image_set_id,
                image_set_frames.c.frame_id == frame_id,
            )
        ).one_or_none()
        return None if row is None else _frame(row)

    # -- search --------------------------------------------------------------------------------------------

    def search(self, datastore_id: str, query: SearchQuery, after: SearchCursor | None, limit: int) -> list[ImageSet]:
        return [_image_set(row) for row in image_set_search.search_rows(self.conn, datastore_id, query, after, limit)]

    def study_counts(self, datastore_id: str, study_uids: Sequence[str]) -> dict[str, tuple[int, int]]:
        return image_set_search.study_counts(self.conn, datastore_id, study_uids)

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
        if not expected_states:
            return False
        # Only a change to or from DELETED changes what the image set counts for (LOCKED and ACTIVE count alike).
        counted = state == ImageSetState.DELETED or ImageSetState.DELETED in expected_states
        before = counters.image_set_usage_of(self.conn, datastore_id, image_set_id) if counted else None
        result = self.conn.execute(
            update(image_sets)
            .where(
                image_sets.c.datastore_id == datastore_id,
                image_sets.c.image_set_id == image_set_id,
                image_sets.c.version_id == expected_version,
                image_sets.c.state.in_([s.value for s in expected_states]),
            )
            .values(state=state.value, workflow_status=workflow_status.value, message=message, updated_at=at)
        )
        if result.rowcount == 1 and counted:
            counters.record_image_set(self.conn, datastore_id, image_set_id, before)
        return result.rowcount == 1

    def update_version(self, version: ImageSetVersion) -> None:
        self.conn.execute(
            update(image_set_versions)
            .where(
                image_set_versions.c.datastore_id == version.datastore_id,
                image_set_versions.c.image_set_id == version.image_set_id,
                image_set_versions.c.version_id == version.version_id,
            )
            .values(
                state=version.state.value,
                workflow_status=version.workflow_status.value,
                message=version.message,
                updated_at=version.updated_at,
            )
        )

    def list_frames(self, datastore_id: str, image_set_id: str) -> list[FrameRef]:
        query = (
            select(image_set_frames)
            .where(image_set_frames.c.datastore_id == datastore_id, image_set_frames.c.image_set_id == image_set_id)
            .order_by(image_set_frames.c.frame_id)
        )
        return [_frame(row) for row in self.conn.execute(query)]

    def frames_used_elsewhere(self, datastore_id: str, image_set_id: str, frame_ids: Sequence[str]) -> set[str]:
        return self._used_elsewhere(image_set_frames, "frame_id", datastore_id, image_set_id, frame_ids)

    def metadata_keys_used_elsewhere(self, datastore_id: str, image_set_id: str, keys: Sequence[str]) -> set[str]:
        return self._used_elsewhere(image_set_versions, "metadata_key", datastore_id, image_set_id, keys)

    def _used_elsewhere(
        self, table: Any, column: str, datastore_id: str, image_set_id: str, values: Sequence[str]
    ) -> set[str]:
        return used_elsewhere(self.conn, table, column, datastore_id, image_set_id, values)

    def delete_frames(self, datastore_id: str, image_set_id: str) -> None:
        self.conn.execute(
            delete(image_set_frames).where(
                image_set_frames.c.datastore_id == datastore_id, image_set_frames.c.image_set_id == image_set_id
            )
        )
        counters.clear_frame_bytes(self.conn, datastore_id, image_set_id)

    def count_locked(self, datastore_id: str, workflow_status: ImageSetWorkflowStatus | None = None) -> int:
        query = (
            select(func.count())
            .select_from(image_sets)
            .where(image_sets.c.datastore_id == datastore_id, image_sets.c.state == ImageSetState.LOCKED.value)
        )
        if workflow_status is not None:
            query = query.where(image_sets.c.workflow_status == workflow_status.value)
        return int(self.conn.execute(query).scalar_one())

    def locked_before(self, cutoff: datetime) -> list[ImageSet]:
        query = select(image_sets).where(
            image_sets.c.state == ImageSetState.LOCKED.value, image_sets.c.updated_at < cutoff
        )
        return [_image_set(row) for row in self.conn.execute(query)]

    def primary_in_study(self, datastore_id: str, study_instance_uid: str) -> list[ImageSet]:
        params = {"datastore_id": datastore_id, "study_instance_uid": study_instance_uid}
        return [_image_set(row) for row in self.conn.execute(_PRIMARY_IN_STUDY, params)]

    def primary_in_study_with_versions(
        self, datastore_id: str, study_instance_uid: str
    ) -> list[tuple[ImageSet, ImageSetVersion]]:
        params = {"datastore_id": datastore_id, "study_instance_uid": study_instance_uid}
        return [_image_set_and_version(row) for row in self.conn.execute(_STUDY_WITH_VERSIONS, params)]


def used_elsewhere(
    conn: Connection,
    table: Any,
    column: str,
    datastore_id: str,
    image_set_id: str,
    values: Sequence[str],
    *conditions: Any,
) -> set[str]:
    """Those of ``values`` in ``table.column`` for another, not deleted image set of the data store (that also
    meets ``conditions`` on ``image_sets``, e.g. a storage tier)."""
    found: set[str] = set()
    owner = (image_sets.c.datastore_id == table.c.datastore_id) & (image_sets.c.image_set_id == table.c.image_set_id)
    for chunk in image_set_search.chunks(values):
        query = (
            select(table.c[column])
            .join(image_sets, owner)
            .where(
                table.c.datastore_id == datastore_id,
                table.c[column].in_(chunk),
                table.c.image_set_id != image_set_id,
                image_sets.c.state != DELETED_IMAGE_SET,
                *conditions,
            )
            .distinct()
        )
        found.update(str(value) for value in conn.execute(query).scalars())
    return found
