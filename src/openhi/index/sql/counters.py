"""The counters of the resource metrics in SQL (``index_counters``, ``image_set_usage``; migration 0008).

The repositories that change counted rows call this module on their own connection, so a counter changes in the
transaction of the change it counts and rolls back with it:

- ``SqlDatastoreRepository.add`` / ``transition``: ``apply`` of the status change;
- ``SqlImageSetRepository.add`` / ``update`` / ``set_state``: ``image_set_usage`` before, ``record_image_set``
  after; ``add_frames``: ``new_frame_bytes`` before the insert, ``add_frame_bytes`` after; ``delete_frames``:
  ``clear_frame_bytes``;
- ``SqlCatalogRepository.put_image_set`` / ``remove_image_set``: ``catalog_usage`` of the touched studies before
  and ``record_catalog`` after.

What each row is worth is ``openhi.metrics.usage``. A counter is spread over ``COUNTER_SLOTS`` rows, and a change
adds to the slot of the image set it is about (an upsert ``value = value + change``): concurrent import commits
of one data store then update different rows, where one row per data store would make every concurrent
SERIALIZABLE commit but one fail and retry. Reading a counter sums its slots (one small GROUP BY).
``SqlCounterRepository.recount`` rebuilds everything from the rows with the same statements as migration 0008.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from openhi.imagesets.model import FrameRef, ImageSetState
from openhi.imports.model import FileStatus, JobStatus
from openhi.index.sql import image_set_search
from openhi.index.sql.schema import (
    catalog_instances,
    catalog_series,
    catalog_studies,
    datastores,
    image_set_frames,
    image_set_usage,
    image_sets,
    import_files,
    import_jobs,
    index_counters,
)
from openhi.metrics.usage import (
    FREQUENT_ACCESS,
    SMALL_IMAGE_SET_BYTES,
    STATUS_PREFIX,
    STORAGE_PREFIX,
    STORAGE_TIERS,
    CatalogUsage,
    Counter,
    DatastoreUsage,
    ImageSetUsage,
    ImportProgress,
    counts_of,
    difference,
)

COUNTER_SLOTS = 16
DELETED = ImageSetState.DELETED.value


def slot_of(key: str) -> int:
    """The slot a change about ``key`` (an image set or data store id) adds to."""
    return zlib.crc32(key.encode()) % COUNTER_SLOTS


def _upsert(conn: Connection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def apply(conn: Connection, datastore_id: str, slot_key: str, changes: Mapping[str, int]) -> None:
    """Add ``changes`` to the data store's counters (in the slot of ``slot_key``), in one statement."""
    if not changes:
        return
    slot = slot_of(slot_key)
    rows = [
        {"datastore_id": datastore_id, "name": str(name), "slot": slot, "value": change}
        for name, change in sorted(changes.items())  # one order everywhere: fewer deadlocks between writers
    ]
    statement = _upsert(conn, index_counters).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["datastore_id", "name", "slot"],
        set_={"value": index_counters.c.value + statement.excluded.value},
    )
    conn.execute(statement)


# -- image sets ------------------------------------------------------------------------------------------------

_USAGE = (
    select(image_sets.c.state, image_sets.c.is_primary, image_set_usage.c.size, image_set_usage.c.tier)
    .select_from(
        image_sets.outerjoin(
            image_set_usage,
            and_(
                image_set_usage.c.datastore_id == image_sets.c.datastore_id,
                image_set_usage.c.image_set_id == image_sets.c.image_set_id,
            ),
        )
    )
    .where(
        image_sets.c.datastore_id == bindparam("datastore_id"),
        image_sets.c.image_set_id == bindparam("image_set_id"),
    )
)


def image_set_usage_of(conn: Connection, datastore_id: str, image_set_id: str) -> ImageSetUsage | None:
    """What the image set counts for now (None: no image set row)."""
    row = conn.execute(_USAGE, {"datastore_id": datastore_id, "image_set_id": image_set_id}).one_or_none()
    if row is None:
        return None
    return ImageSetUsage(
        live=row.state != DELETED,
        primary=bool(row.is_primary),
        size=int(row.size or 0),
        tier=row.tier or FREQUENT_ACCESS,
    )


def record_image_set(conn: Connection, datastore_id: str, image_set_id: str, before: ImageSetUsage | None) -> None:
    """Count the change of the image set since ``before`` (its ``image_set_usage_of`` before the change)."""
    after = image_set_usage_of(conn, datastore_id, image_set_id)
    apply(conn, datastore_id, image_set_id, difference(counts_of(before), counts_of(after)))


def _usage_key(datastore_id: str, image_set_id: str) -> tuple[Any, Any]:
    return image_set_usage.c.datastore_id == datastore_id, image_set_usage.c.image_set_id == image_set_id


def new_frame_bytes(conn: Connection, frames: Sequence[FrameRef]) -> dict[tuple[str, str], int]:
    """(data store, image set) -> bytes of those ``frames`` that an insert ignoring duplicates would add."""
    wanted: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for frame in frames:
        wanted[(frame.datastore_id, frame.image_set_id)].setdefault(frame.frame_id, frame.size)
    added: dict[tuple[str, str], int] = {}
    for (datastore_id, image_set_id), sizes in wanted.items():
        present: set[str] = set()
        for chunk in image_set_search.chunks(list(sizes)):
            query = select(image_set_frames.c.frame_id).where(
                image_set_frames.c.datastore_id == datastore_id,
                image_set_frames.c.image_set_id == image_set_id,
                image_set_frames.c.frame_id.in_(chunk),
            )
            present.update(str(value) for value in conn.execute(query).scalars())
        added[(datastore_id, image_set_id)] = sum(size for frame_id, size in sizes.items() if frame_id not in present)
    return added


def add_frame_bytes(conn: Connection, added: Mapping[tuple[str, str], int]) -> None:
    """Count frames just inserted (``new_frame_bytes`` of them, taken before the insert)."""
    for (datastore_id, image_set_id), size in sorted(added.items()):
        if not size:
            continue
        before = image_set_usage_of(conn, datastore_id, image_set_id)
        statement = _upsert(conn, image_set_usage).values(
            datastore_id=datastore_id, image_set_id=image_set_id, size=size, tier=FREQUENT_ACCESS
        )
        grown = {"size": image_set_usage.c.size + statement.excluded.size}
        conn.execute(statement.on_conflict_do_update(index_elements=["datastore_id", "image_set_id"], set_=grown))
        record_image_set(conn, datastore_id, image_set_id, before)


def clear_frame_bytes(conn: Connection, datastore_id: str, image_set_id: str) -> None:
    """The image set references no frame any more."""
    before = image_set_usage_of(conn, datastore_id, image_set_id)
    conn.execute(update(image_set_usage).where(*_usage_key(datastore_id, image_set_id)).values(size=0))
    record_image_set(conn, datastore_id, image_set_id, before)


def move_tier(conn: Connection, datastore_id: str, image_set_id: str, tier: str) -> bool:
    """Count the image set's bytes in ``tier`` from now on; True when they were counted in another tier."""
    if tier not in STORAGE_TIERS:
        raise ValueError(f"unknown storage tier {tier!r}; expected one of {STORAGE_TIERS}")
    before = image_set_usage_of(conn, datastore_id, image_set_id)
    if before is None or before.tier == tier:
        return False
    statement = _upsert(conn, image_set_usage).values(
        datastore_id=datastore_id, image_set_id=image_set_id, size=before.size, tier=str(tier)
    )
    moved = {"tier": statement.excluded.tier}
    conn.execute(statement.on_conflict_do_update(index_elements=["datastore_id", "image_set_id"], set_=moved))
    record_image_set(conn, datastore_id, image_set_id, before)
    return True


# -- the catalog -----------------------------------------------------------------------------------------------


def catalog_usage(conn: Connection, datastore_id: str, image_set_id: str, study_uids: Iterable[str]) -> CatalogUsage:
    """The image set's series and instance rows and the study rows of ``study_uids`` (the touched studies)."""

    def rows_of(table: Any) -> Any:
        return (
            select(func.count())
            .select_from(table)
            .where(table.c.datastore_id == datastore_id, table.c.image_set_id == image_set_id)
            .scalar_subquery()
        )

    uids = sorted(set(study_uids))
    studies: Any = literal(0)
    if uids:
        studies = (
            select(func.count())
            .select_from(catalog_studies)
            .where(catalog_studies.c.datastore_id == datastore_id, catalog_studies.c.study_uid.in_(uids))
            .scalar_subquery()
        )
    row = conn.execute(select(studies, rows_of(catalog_series), rows_of(catalog_instances))).one()
    return CatalogUsage(studies=int(row[0]), series=int(row[1]), instances=int(row[2]))


def record_catalog(
    conn: Connection, datastore_id: str, image_set_id: str, study_uids: Iterable[str], before: CatalogUsage
) -> None:
    """Count the change of the image set's catalog rows since ``before`` (same ``study_uids``)."""
    after = catalog_usage(conn, datastore_id, image_set_id, study_uids)
    apply(conn, datastore_id, image_set_id, difference(before.counts(), after.counts()))


# -- reading back and recounting ---------------------------------------------------------------------------------

_TOTALS = (
    select(index_counters.c.datastore_id, index_counters.c.name, func.sum(index_counters.c.value).label("value"))
    .group_by(index_counters.c.datastore_id, index_counters.c.name)
    .order_by(index_counters.c.datastore_id)
)

_DONE = import_files.c.status != FileStatus.PENDING.value
_PROGRESS = (
    select(
        import_jobs.c.datastore_id,
        import_jobs.c.job_id,
        import_jobs.c.submitted_at,
        func.count(import_files.c.seq).label("files_total"),
        func.coalesce(func.sum(case((_DONE, 1), else_=0)), 0).label("files_done"),
        func.coalesce(func.sum(case((import_files.c.status == FileStatus.FAILED.value, 1), else_=0)), 0).label(
            "files_failed"
        ),
        func.coalesce(func.sum(import_files.c.size), 0).label("bytes_total"),
        func.coalesce(func.sum(case((_DONE, import_files.c.size), else_=0)), 0).label("bytes_done"),
    )
    .select_from(import_jobs.outerjoin(import_files, import_files.c.job_id == import_jobs.c.job_id))
    .where(import_jobs.c.status == JobStatus.IN_PROGRESS.value)
    .group_by(import_jobs.c.datastore_id, import_jobs.c.job_id, import_jobs.c.submitted_at)
    .order_by(import_jobs.c.job_id)
)


def _frame_bytes_of(datastore_id: Any, image_set_id: Any) -> Any:
    """Correlated: the bytes of the frames of the image set named by the two outer columns."""
    return func.coalesce(
        select(func.sum(image_set_frames.c.size))
        .where(image_set_frames.c.datastore_id == datastore_id, image_set_frames.c.image_set_id == image_set_id)
        .scalar_subquery(),
        0,
    )


def recount_statements() -> list[Any]:
    """Statements that rebuild ``image_set_usage`` sizes and every counter from the rows (kept tiers)."""
    usage, live = image_set_usage, image_sets.c.state != DELETED
    joined = image_sets.join(
        usage,
        and_(usage.c.datastore_id == image_sets.c.datastore_id, usage.c.image_set_id == image_sets.c.image_set_id),
    )
    missing = ~exists().where(
        usage.c.datastore_id == image_sets.c.datastore_id, usage.c.image_set_id == image_sets.c.image_set_id
    )
    count = func.count()
    statements: list[Any] = [
        update(usage).values(size=_frame_bytes_of(usage.c.datastore_id, usage.c.image_set_id)),
        insert(usage).from_select(
            ["datastore_id", "image_set_id", "size", "tier"],
            select(
                image_sets.c.datastore_id,
                image_sets.c.image_set_id,
                _frame_bytes_of(image_sets.c.datastore_id, image_sets.c.image_set_id),
                literal(FREQUENT_ACCESS),
            ).where(missing),
        ),
        delete(index_counters),
        insert(index_counters).from_select(
            ["datastore_id", "name", "slot", "value"],
            select(datastores.c.datastore_id, literal(STATUS_PREFIX) + datastores.c.status, literal(0), literal(1)),
        ),
    ]
    for name, where in (
        (Counter.IMAGE_SETS, [live]),
        (Counter.PRIMARY_IMAGE_SETS, [live, image_sets.c.is_primary.is_(True)]),
    ):
        statements.append(
            insert(index_counters).from_select(
                ["datastore_id", "name", "slot", "value"],
                select(image_sets.c.datastore_id, literal(name.value), literal(0), count)
                .where(*where)
                .group_by(image_sets.c.datastore_id),
            )
        )
    statements.append(
        insert(index_counters).from_select(
            ["datastore_id", "name", "slot", "value"],
            select(image_sets.c.datastore_id, literal(Counter.SMALL_IMAGE_SETS.value), literal(0), count)
            .select_from(joined)
            .where(live, usage.c.size < SMALL_IMAGE_SET_BYTES)
            .group_by(image_sets.c.datastore_id),
        )
    )
    statements.append(
        insert(index_counters).from_select(
            ["datastore_id", "name", "slot", "value"],
            select(
                image_sets.c.datastore_id, literal(STORAGE_PREFIX) + usage.c.tier, literal(0), func.sum(usage.c.size)
            )
            .select_from(joined)
            .where(live)
            .group_by(image_sets.c.datastore_id, usage.c.tier),
        )
    )
    for name, table in (
        (Counter.STUDIES, catalog_studies),
        (Counter.SERIES, catalog_series),
        (Counter.INSTANCES, catalog_instances),
    ):
        statements.append(
            insert(index_counters).from_select(
                ["datastore_id", "name", "slot", "value"],
                select(table.c.datastore_id, literal(name.value), literal(0), count).group_by(table.c.datastore_id),
            )
        )
    return statements


@dataclass(frozen=True)
class SqlCounterRepository:
    """``CounterRepository`` on one connection."""

    conn: Connection

    def totals(self) -> list[DatastoreUsage]:
        by_datastore: dict[str, dict[str, int]] = defaultdict(dict)
        for row in self.conn.execute(_TOTALS):
            by_datastore[row.datastore_id][row.name] = int(row.value)
        return [DatastoreUsage.of(ds, counters) for ds, counters in sorted(by_datastore.items())]

    def move_tier(self, datastore_id: str, image_set_id: str, tier: str) -> bool:
        return move_tier(self.conn, datastore_id, image_set_id, tier)

    def import_progress(self) -> list[ImportProgress]:
        return [
            ImportProgress(
                datastore_id=row.datastore_id,
                job_id=row.job_id,
                submitted_at=row.submitted_at,
                files_total=int(row.files_total),
                files_done=int(row.files_done),
                files_failed=int(row.files_failed),
                bytes_total=int(row.bytes_total),
                bytes_done=int(row.bytes_done),
            )
            for row in self.conn.execute(_PROGRESS)
        ]

    def recount(self) -> None:
        for statement in recount_statements():
            self.conn.execute(statement)
