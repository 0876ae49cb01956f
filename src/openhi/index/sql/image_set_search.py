"""SearchImageSets on the SQL index: a ``SearchQuery`` as one keyset statement on ``image_sets``.

Every condition and the sort are on columns led by ``datastore_id`` in an index (schema.py), so each query is
a range scan of one index plus, when filtering and sorting on different columns, a sort of the matches. The
keyset predicate is written as ``sort <= v AND (sort < v OR id < last_id)`` (for DESC): the first conjunct
bounds the index range on both SQLite and PostgreSQL, the second drops the ties already served.

Which index drives a query with a filter on another column than the sort's? PostgreSQL decides from its
statistics (autovacuum keeps them). SQLite has none unless ANALYZE ran, and without them it prefers the
sort's index (no sort step), which reads every image set of the data store to find a patient's few. So when
a condition names a column other than the sort column (isPrimary aside: a flag selects nothing), references
to the sort column are rendered ``+column`` on SQLite (a no-op operator that disqualifies an index), and the
filter's index drives; the matches are then sorted. Other dialects render the plain column.

Sorting by DICOMStudyDateAndTime puts image sets without a study date (``study_datetime`` NULL) last in both
directions: the page is read from the dated rows first and, if it is not full, completed from the undated
rows ordered by id (``study_datetime IS NULL`` is an index range too), so NULL ordering never depends on the
database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from openhi.index.sql.schema import image_sets
from openhi.search.criteria import (
    Condition,
    Operator,
    SearchCursor,
    SearchField,
    SearchQuery,
    SortField,
    SortOrder,
)

DELETED = "DELETED"
IN_CLAUSE_CHUNK = 500  # bound parameters per IN (...) list, well under every driver's limit

FIELD_COLUMNS: dict[SearchField, Any] = {
    SearchField.PATIENT_ID: image_sets.c.patient_id,
    SearchField.ACCESSION_NUMBER: image_sets.c.accession_number,
    SearchField.STUDY_ID: image_sets.c.study_id,
    SearchField.STUDY_INSTANCE_UID: image_sets.c.study_instance_uid,
    SearchField.SERIES_INSTANCE_UID: image_sets.c.series_instance_uid,
    SearchField.STUDY_DATE_AND_TIME: image_sets.c.study_datetime,
    SearchField.CREATED_AT: image_sets.c.created_at,
    SearchField.UPDATED_AT: image_sets.c.updated_at,
    SearchField.IS_PRIMARY: image_sets.c.is_primary,
}
SORT_COLUMNS: dict[SortField, Any] = {
    SortField.UPDATED_AT: image_sets.c.updated_at,
    SortField.CREATED_AT: image_sets.c.created_at,
    SortField.STUDY_DATE_AND_TIME: image_sets.c.study_datetime,
}


class NotIndexed(ColumnElement[Any]):
    """A column that must not select an index: ``+column`` on SQLite, the column elsewhere."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012 - SQLAlchemy's API

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(NotIndexed)
def _plain_column(element: NotIndexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(NotIndexed, "sqlite")
def _sqlite_not_indexed(element: NotIndexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def chunks(values: Sequence[str]) -> list[list[str]]:
    """``values`` (deduplicated, in order) cut into IN-list sized pieces."""
    unique = list(dict.fromkeys(values))
    return [unique[start : start + IN_CLAUSE_CHUNK] for start in range(0, len(unique), IN_CLAUSE_CHUNK)]


def sort_column(query: SearchQuery) -> Any:
    """The sort column, wrapped in ``NotIndexed`` when a condition on another column should drive."""
    column = SORT_COLUMNS[query.sort.field]
    others = {c.field for c in query.conditions} - {SearchField.IS_PRIMARY, SearchField(query.sort.field.value)}
    return NotIndexed(column) if others else column


def _predicate(condition: Condition, query: SearchQuery) -> ColumnElement[bool]:
    column = FIELD_COLUMNS[condition.field]
    if condition.field.value == query.sort.field.value:
        column = sort_column(query)
    predicate: ColumnElement[bool]
    if condition.field is SearchField.IS_PRIMARY:
        predicate = column == (true() if condition.lower else false())  # "= true", so an index could apply
    elif condition.operator is Operator.EQUAL:
        predicate = column == condition.lower
    else:
        predicate = and_(column >= condition.lower, column <= condition.upper)
    return predicate


def _base(datastore_id: str, query: SearchQuery) -> Select[Any]:
    return select(image_sets).where(
        image_sets.c.datastore_id == datastore_id,
        image_sets.c.state != DELETED,
        *(_predicate(condition, query) for condition in query.conditions),
    )


def _after(column: Any, descending: bool, value: str | datetime, image_set_id: str) -> ColumnElement[bool]:
    ids = image_sets.c.image_set_id
    if descending:
        return and_(column <= value, or_(column < value, ids < image_set_id))
    return and_(column >= value, or_(column > value, ids > image_set_id))


def _ordered(statement: Select[Any], column: Any, descending: bool, limit: int) -> Select[Any]:
    ids = image_sets.c.image_set_id
    order = (column.desc(), ids.desc()) if descending else (column.asc(), ids.asc())
    return statement.order_by(*order).limit(limit)


def search_rows(
    conn: Connection, datastore_id: str, query: SearchQuery, after: SearchCursor | None, limit: int
) -> list[Any]:
    """The ``image_sets`` rows of one page (see the module docstring for the order)."""
    if limit <= 0:
        return []
    descending = query.sort.order is SortOrder.DESC
    column = sort_column(query)
    nullable = query.sort.field is SortField.STUDY_DATE_AND_TIME
    rows: list[Any] = []
    if after is None or after.value is not None:
        statement = _base(datastore_id, query)
        if after is not None and after.value is not None:
            statement = statement.where(_after(column, descending, after.value, after.image_set_id))
        elif nullable:
            statement = statement.where(column.is_not(None))
        rows = list(conn.execute(_ordered(statement, column, descending, limit)))
    if not nullable or len(rows) >= limit:
        return rows
    if any(c.field is SearchField.STUDY_DATE_AND_TIME for c in query.conditions):
        return rows  # a study date filter never matches an undated image set
    ids = image_sets.c.image_set_id
    undated = _base(datastore_id, query).where(column.is_(None))
    if after is not None and after.value is None:
        undated = undated.where(ids < after.image_set_id if descending else ids > after.image_set_id)
    undated = undated.order_by(ids.desc() if descending else ids.asc()).limit(limit - len(rows))
    return rows + list(conn.execute(undated))


def study_counts(conn: Connection, datastore_id: str, study_uids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Study UID -> (distinct series, instances) over the primary, not deleted image sets of the data store."""
    counts: dict[str, tuple[int, int]] = {}
    for chunk in chunks(study_uids):
        statement = (
            select(
                image_sets.c.study_instance_uid,
                func.count(image_sets.c.series_instance_uid.distinct()),
                func.coalesce(func.sum(image_sets.c.instance_count), 0),
            )
            .where(
                image_sets.c.datastore_id == datastore_id,
                image_sets.c.study_instance_uid.in_(chunk),
                image_sets.c.is_primary == true(),
                image_sets.c.state != DELETED,
            )
            .group_by(image_sets.c.study_instance_uid)
        )
        for uid, series, instances in conn.execute(statement):
            counts[str(uid)] = (int(series), int(instances))
    return counts
