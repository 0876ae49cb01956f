"""``SqlCatalogRepository``: the QIDO-RS catalog (``openhi.catalog``) in SQL, for SQLite and PostgreSQL.

Writing an image set's rows diffs them against what is stored (a digest per instance row), so a new version
that changes one instance of a large series rewrites one row, not the series. The study rows of the touched
studies are then rebuilt from their series rows (``catalog.derive.aggregate_study``, the same function the
memory index uses).

Searching translates each ``catalog.query`` condition into a WHERE clause on the row's column, with the
semantics of ``catalog.query.matches`` (the contract suite checks both agree):
- ``Exact`` / ``AnyOf`` -> ``=`` / ``IN`` (person names on their casefolded ``_norm`` column);
- ``Wildcard`` -> a regular expression (``regexp_match``: ``~`` on PostgreSQL, Python's ``re`` on SQLite, which
  SQLAlchemy registers) anchored at both ends, plus a range on the literal prefix when there is one so that the
  column's index narrows the scan; multi-valued columns (``|``-joined) match value by value;
- ``Between`` -> ``>=`` / ``<=`` on the normalized text; ``Fuzzy`` -> one word-prefix regex per query word on the
  ``_words`` column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    delete,
    insert,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import Row

from openhi.catalog.derive import aggregate_study
from openhi.catalog.model import (
    CatalogInstance,
    CatalogSeries,
    CatalogStudy,
    ImageSetCatalog,
    InstanceRow,
    SeriesRow,
    StudyFields,
)
from openhi.catalog.query import (
    AnyOf,
    Between,
    Condition,
    Exact,
    Fuzzy,
    Kind,
    Wildcard,
    name_words,
    normalize_name,
    wildcard_regex,
)
from openhi.index.sql import counters
from openhi.index.sql.schema import (
    catalog_image_sets,
    catalog_instances,
    catalog_series,
    catalog_studies,
    image_sets,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DELIMITER = "|"  # of multi-valued columns (modalities, warning codes): never part of a CS or a decimal value
_BATCH = 500


def _joined(values: Sequence[object]) -> str | None:
    return DELIMITER.join(str(value) for value in values) if values else None


def _split_codes(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in (text or "").split(DELIMITER) if part)


def _words(name: str | None) -> str | None:
    return None if name is None else " " + " ".join(name_words(normalize_name(name))) + " "


def _norm(name: str | None) -> str | None:
    return None if name is None else normalize_name(name)


def _columns(record: DataclassInstance, **overrides: Any) -> dict[str, Any]:
    """A catalog record's fields as column values (each column is named after its field), ``overrides`` replacing
    the fields stored in another form."""
    return {**{item.name: getattr(record, item.name) for item in fields(record)}, **overrides}


def _record[R: DataclassInstance](cls: type[R], row: Row[Any], **overrides: Any) -> R:
    """The catalog record ``cls`` of a selected row (the inverse of ``_columns``)."""
    values = {item.name: getattr(row, item.name) for item in fields(cls) if item.name not in overrides}
    return cls(**values, **overrides)


def _instance_values(datastore_id: str, image_set_id: str, instance: CatalogInstance) -> dict[str, Any]:
    values = {
        "datastore_id": datastore_id,
        "image_set_id": image_set_id,
        **_columns(instance, warning_reasons=_joined(instance.warning_reasons)),
    }
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
    return {**values, "digest": digest}


def _series_values(datastore_id: str, image_set_id: str, series: CatalogSeries, at: datetime) -> dict[str, Any]:
    return {"datastore_id": datastore_id, "image_set_id": image_set_id, **_columns(series), "updated_at": at}


def _study_values(study: CatalogStudy) -> dict[str, Any]:
    names = study.fields
    return {
        "datastore_id": study.datastore_id,
        "study_uid": study.study_uid,
        **_columns(names),
        "patient_name_norm": _norm(names.patient_name),
        "patient_name_words": _words(names.patient_name),
        "referring_physician_name_norm": _norm(names.referring_physician_name),
        "referring_physician_name_words": _words(names.referring_physician_name),
        "modalities": _joined(study.modalities),
        "series_count": study.series_count,
        "instance_count": study.instance_count,
        "updated_at": study.updated_at,
        "attributes": study.attributes,
    }


def _series_row(row: Row[Any]) -> SeriesRow:
    series = _record(CatalogSeries, row)
    return SeriesRow(row.datastore_id, row.image_set_id, series, updated_at=row.updated_at)


def _instance_row(row: Row[Any]) -> InstanceRow:
    instance = _record(CatalogInstance, row, warning_reasons=_split_codes(row.warning_reasons))
    return InstanceRow(row.datastore_id, row.image_set_id, instance)


def _study(row: Row[Any]) -> CatalogStudy:
    return CatalogStudy(
        datastore_id=row.datastore_id,
        study_uid=row.study_uid,
        fields=_record(StudyFields, row),
        modalities=tuple(part for part in (row.modalities or "").split(DELIMITER) if part),
        series_count=row.series_count,
        instance_count=row.instance_count,
        updated_at=row.updated_at,
        attributes=row.attributes,
    )


# -- conditions -> SQL -------------------------------------------------------------------------------------------


def _prefix(pattern: str) -> str:
    """The literal text before the first wildcard of a pattern."""
    cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
    return pattern[:cut]


def _multi(column: ColumnElement[Any], body: str) -> ColumnElement[bool]:
    """A ``|``-joined multi-valued column with one value matching the regex ``body``."""
    return column.regexp_match(f"(?s)(^|\\{DELIMITER})({body})(\\{DELIMITER}|$)")


def condition_clause(table: Table, condition: Condition, *, binary_order: bool) -> ColumnElement[bool]:
    """The WHERE clause of one condition on a catalog table (semantics of ``catalog.query.matches``).

    ``binary_order``: text compares code point by code point (SQLite), so a wildcard's literal prefix may also
    be a range on the column; under a PostgreSQL collation it is not, so there the range is taken on
    ``column COLLATE "C"`` (code point order in UTF-8), which the indexes of migration 0005 serve. Either way
    the regex decides; the range only narrows the scan.
    """
    attribute, matcher = condition.attribute, condition.matcher
    kind = attribute.kind
    name = attribute.column
    column = table.c[f"{name}_norm" if kind is Kind.PERSON_NAME else name]
    if kind in (Kind.MULTI, Kind.CODES):
        if isinstance(matcher, Exact):
            return _multi(column, wildcard_regex(str(matcher.value)))
        if isinstance(matcher, AnyOf):
            return _multi(column, "|".join(wildcard_regex(str(value)) for value in matcher.values))
        if isinstance(matcher, Wildcard):
            return _multi(column, wildcard_regex(matcher.pattern, any_char=f"[^\\{DELIMITER}]"))
        raise ValueError(f"{type(matcher).__name__} does not apply to {attribute.keyword}")
    if isinstance(matcher, Exact):
        return column == matcher.value
    if isinstance(matcher, AnyOf):
        return column.in_(list(matcher.values))
    if isinstance(matcher, Between):
        parts: list[ColumnElement[bool]] = [column.is_not(None)]
        if matcher.low is not None:
            parts.append(column >= matcher.low)
        if matcher.high is not None:
            parts.append(column <= matcher.high)
        return and_(*parts)
    if isinstance(matcher, Wildcard):
        clause = column.regexp_match(f"(?s)^{wildcard_regex(matcher.pattern)}$")
        prefix = _prefix(matcher.pattern)
        if prefix:  # lets the column's index narrow the scan; the regex decides
            ordered = column if binary_order else column.collate("C")
            return and_(ordered >= prefix, ordered < prefix + "\U0010ffff", clause)
        return clause
    words = table.c[f"{name}_words"]
    return and_(true(), *(words.regexp_match(" " + wildcard_regex(word)) for word in matcher.words))


def _where(table: Table, conditions: Sequence[Condition], binary_order: bool) -> list[ColumnElement[bool]]:
    return [condition_clause(table, condition, binary_order=binary_order) for condition in conditions]


# Study columns with an index led by datastore_id (schema.CATALOG_STUDY_INDEXES, and the primary key).
_INDEXED = frozenset({"patient_id", "patient_name", "accession_number", "study_date", "study_id"}) | frozenset(
    {"patient_birth_date", "referring_physician_name", "study_uid"}
)


def _uses_index(condition: Condition) -> bool:
    matcher = condition.matcher
    if condition.attribute.column not in _INDEXED or isinstance(matcher, Fuzzy):
        return False
    return not isinstance(matcher, Wildcard) or bool(_prefix(matcher.pattern))


def studies_statement(datastore_id: str, conditions: Sequence[Condition], *, binary_order: bool) -> Select[Any]:
    """The study search, in its order (last update, then Study Instance UID, both descending).

    SQLite has no statistics: given a LIMIT it prefers the sort's index (no sort step) and would read every study
    of the data store to find one patient's. When a condition can use its column's index, the sort columns are
    rendered ``+column`` on SQLite (a no-op that disqualifies their index), so the filter's index drives and the
    few matches are sorted (as ``image_set_search`` does). PostgreSQL decides from its statistics.
    """
    table = catalog_studies
    updated, uid = table.c.updated_at, table.c.study_uid
    order: tuple[Any, Any]
    if binary_order and any(_uses_index(condition) for condition in conditions):
        order = (literal_column(f"+{table.name}.updated_at").desc(), literal_column(f"+{table.name}.study_uid").desc())
    else:
        order = (updated.desc(), uid.desc())
    return (
        select(table)
        .where(table.c.datastore_id == datastore_id, *_where(table, conditions, binary_order))
        .order_by(*order)
    )


def _nulls_last(column: ColumnElement[Any]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """Sort keys of an ascending order with the rows lacking a value last (the guide's "none last")."""
    return column.is_(None), column


def _page(statement: Select[Any], offset: int, limit: int) -> Select[Any]:
    """The results ``offset`` .. ``offset + limit`` of ``statement`` (negative values count as 0)."""
    return statement.offset(max(offset, 0)).limit(max(limit, 0))


@dataclass(frozen=True)
class SqlCatalogRepository:
    """``DicomCatalogRepository`` on one connection."""

    conn: Connection

    @property
    def _binary(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    # -- writes ---------------------------------------------------------------------------------------------

    def _studies_of(self, datastore_id: str, image_set_id: str) -> set[str]:
        rows = self.conn.execute(
            select(catalog_series.c.study_uid).where(
                catalog_series.c.datastore_id == datastore_id, catalog_series.c.image_set_id == image_set_id
            )
        )
        return {row.study_uid for row in rows}

    def _refresh(self, datastore_id: str, study_uids: set[str]) -> None:
        for study_uid in sorted(study_uids):
            study = aggregate_study(datastore_id, study_uid, self.series_of_study(datastore_id, study_uid))
            key = (catalog_studies.c.datastore_id == datastore_id, catalog_studies.c.study_uid == study_uid)
            self.conn.execute(delete(catalog_studies).where(*key))
            if study is not None:
                self.conn.execute(insert(catalog_studies).values(_study_values(study)))

    def _put_instances(self, datastore_id: str, image_set_id: str, instances: Sequence[CatalogInstance]) -> None:
        table = catalog_instances
        mine = (table.c.datastore_id == datastore_id, table.c.image_set_id == image_set_id)
        stored = {
            (row.series_uid, row.sop_uid): row.digest
            for row in self.conn.execute(select(table.c.series_uid, table.c.sop_uid, table.c.digest).where(*mine))
        }
        wanted = {
            (instance.series_uid, instance.sop_uid): _instance_values(datastore_id, image_set_id, instance)
            for instance in instances
        }
        stale = [key for key, digest in stored.items() if key not in wanted or wanted[key]["digest"] != digest]
        fresh = [values for key, values in wanted.items() if stored.get(key) != values["digest"]]
        for start in range(0, len(stale), _BATCH):
            self.conn.execute(
                delete(table).where(
                    *mine, tuple_(table.c.series_uid, table.c.sop_uid).in_(stale[start : start + _BATCH])
                )
            )
        for start in range(0, len(fresh), _BATCH):
            self.conn.execute(insert(table), fresh[start : start + _BATCH])

    def put_image_set(
        self, datastore_id: str, image_set_id: str, version_id: int, catalog: ImageSetCatalog, updated_at: datetime
    ) -> None:
        touched = self._studies_of(datastore_id, image_set_id) | set(catalog.study_uids)
        before = counters.catalog_usage(self.conn, datastore_id, image_set_id, touched)
        mine = (catalog_series.c.datastore_id == datastore_id, catalog_series.c.image_set_id == image_set_id)
        self.conn.execute(delete(catalog_series).where(*mine))
        if catalog.series:
            self.conn.execute(
                insert(catalog_series),
                [_series_values(datastore_id, image_set_id, series, updated_at) for series in catalog.series],
            )
        self._put_instances(datastore_id, image_set_id, catalog.instances)
        marker = (catalog_image_sets.c.datastore_id == datastore_id, catalog_image_sets.c.image_set_id == image_set_id)
        changed = self.conn.execute(update(catalog_image_sets).where(*marker).values(version_id=version_id)).rowcount
        if not changed:
            self.conn.execute(
                insert(catalog_image_sets).values(
                    datastore_id=datastore_id, image_set_id=image_set_id, version_id=version_id
                )
            )
        self._refresh(datastore_id, touched)
        counters.record_catalog(self.conn, datastore_id, image_set_id, touched, before)

    def remove_image_set(self, datastore_id: str, image_set_id: str) -> None:
        touched = self._studies_of(datastore_id, image_set_id)
        before = counters.catalog_usage(self.conn, datastore_id, image_set_id, touched)
        for table in (catalog_series, catalog_instances, catalog_image_sets):
            self.conn.execute(
                delete(table).where(table.c.datastore_id == datastore_id, table.c.image_set_id == image_set_id)
            )
        self._refresh(datastore_id, touched)
        counters.record_catalog(self.conn, datastore_id, image_set_id, touched, before)

    def uncataloged(self, limit: int) -> list[tuple[str, str, int]]:
        marker = catalog_image_sets
        statement = (
            select(image_sets.c.datastore_id, image_sets.c.image_set_id, image_sets.c.version_id)
            .select_from(
                image_sets.outerjoin(
                    marker,
                    and_(
                        marker.c.datastore_id == image_sets.c.datastore_id,
                        marker.c.image_set_id == image_sets.c.image_set_id,
                    ),
                )
            )
            .where(
                image_sets.c.is_primary.is_(True),
                image_sets.c.state != "DELETED",
                or_(marker.c.version_id.is_(None), marker.c.version_id < image_sets.c.version_id),
            )
            .order_by(image_sets.c.datastore_id, image_sets.c.image_set_id)
            .limit(max(limit, 0))
        )
        return [(row.datastore_id, row.image_set_id, row.version_id) for row in self.conn.execute(statement)]

    # -- searches -------------------------------------------------------------------------------------------

    def search_studies(
        self, datastore_id: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[CatalogStudy]:
        statement = _page(studies_statement(datastore_id, conditions, binary_order=self._binary), offset, limit)
        return [_study(row) for row in self.conn.execute(statement)]

    def search_series(
        self, datastore_id: str, study_uid: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[SeriesRow]:
        table = catalog_series
        statement = (
            select(table)
            .where(
                table.c.datastore_id == datastore_id,
                table.c.study_uid == study_uid,
                *_where(table, conditions, self._binary),
            )
            .order_by(*_nulls_last(table.c.series_number), table.c.series_uid, table.c.image_set_id)
        )
        return [_series_row(row) for row in self.conn.execute(_page(statement, offset, limit))]

    def search_instances(
        self,
        datastore_id: str,
        study_uid: str,
        series_uid: str | None,
        conditions: Sequence[Condition],
        offset: int,
        limit: int,
    ) -> list[InstanceRow]:
        table = catalog_instances
        scope = [table.c.datastore_id == datastore_id, table.c.study_uid == study_uid]
        if series_uid is not None:
            scope.append(table.c.series_uid == series_uid)
        statement = (
            select(table)
            .where(*scope, *_where(table, conditions, self._binary))
            .order_by(
                *_nulls_last(table.c.series_number),
                table.c.series_uid,
                *_nulls_last(table.c.instance_number),
                table.c.sop_uid,
                table.c.image_set_id,
            )
        )
        return [_instance_row(row) for row in self.conn.execute(_page(statement, offset, limit))]

    def series_of_study(self, datastore_id: str, study_uid: str) -> list[SeriesRow]:
        return self.search_series(datastore_id, study_uid, [], 0, 1_000_000)
