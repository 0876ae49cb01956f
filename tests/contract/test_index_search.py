"""Contract suite of image set search and lifecycle verbs of ``ImageSetRepository`` (memory, SQLite, PostgreSQL).

Search: every filter, AND of two, inclusive BETWEEN bounds, every sort in both directions, keyset pages
that stay stable with ties (and with the undated tail of the study date sort), deleted image sets never
found, LOCKED ones found, study counts. Lifecycle: compare-and-set state, version rows, frames and metadata
documents shared with other image sets, locked count, primary image sets of a study.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from openhi.dicom.normalize import GroupingKey
from openhi.ids import new_id
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetState,
    ImageSetSummary,
    ImageSetVersion,
    ImageSetWorkflowStatus,
)
from openhi.index.port import Index, UnitOfWork
from openhi.index.sql.adapter import SqlIndex
from openhi.search.criteria import SearchCursor, SearchQuery, SortField, parse_criteria

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
NewDatastore = Callable[[], str]
ACTIVE, LOCKED, DELETED = ImageSetState.ACTIVE, ImageSetState.LOCKED, ImageSetState.DELETED


def image_set(
    datastore_id: str,
    *,
    patient: str | None = "PAT-1",
    accession: str | None = "ACC-1",
    study_id: str | None = "S1",
    study: str | None = "1.2.3",
    series: str | None = None,
    study_date: str | None = "20240501",
    study_time: str | None = "083000",
    created: datetime = T0,
    updated: datetime | None = None,
    state: ImageSetState = ACTIVE,
    primary: bool = True,
    instances: int = 1,
    image_set_id: str | None = None,
) -> ImageSet:
    return ImageSet(
        datastore_id=datastore_id,
        image_set_id=image_set_id or new_id(),
        version_id=1,
        state=state,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=primary,
        created_at=created,
        updated_at=updated or created,
        grouping=GroupingKey(
            study_date=study_date,
            accession_number=accession,
            patient_id=patient,
            study_instance_uid=study,
            study_id=study_id,
            series_instance_uid=series or f"1.2.3.{new_id()[:6].translate(str.maketrans('abcdef', '123456'))}",
            series_number="1",
        ),
        summary=ImageSetSummary(patient_name="DOE^JANE", study_time=study_time, instance_count=instances),
    )


def add(index: Index, *image_sets: ImageSet) -> None:
    def work(uow: UnitOfWork) -> None:
        for one in image_sets:
            uow.image_sets.add(one)

    index.run(work)


def search(
    index: Index,
    datastore_id: str,
    criteria: dict[str, Any] | None,
    after: SearchCursor | None = None,
    limit: int = 100,
) -> list[ImageSet]:
    query = parse_criteria(criteria)
    return index.run(lambda uow: uow.image_sets.search(datastore_id, query, after, limit), readonly=True)


def ids(image_sets: list[ImageSet]) -> list[str]:
    return [s.image_set_id for s in image_sets]


def equal(name: str, value: object) -> dict[str, Any]:
    return {"filters": [{"operator": "EQUAL", "values": [{name: value}]}]}


def between(name: str, lower: object, upper: object) -> dict[str, Any]:
    return {"filters": [{"operator": "BETWEEN", "values": [{name: lower}, {name: upper}]}]}


def study_dt(day: str, time: str | None = None) -> dict[str, str]:
    return {"DICOMStudyDate": day} | ({"DICOMStudyTime": time} if time is not None else {})


# -- filters ------------------------------------------------------------------------------------------------


@pytest.fixture
def corpus(index: Index, new_datastore: NewDatastore) -> tuple[str, dict[str, ImageSet]]:
    """Named image sets in one data store, plus look-alikes in another data store that must never show."""
    store, other = new_datastore(), new_datastore()
    sets = {
        "a": image_set(store, created=T0, study_date="20240501", study_time="083000"),
        "b": image_set(
            store, patient="PAT-2", accession="ACC-2", study="1.2.4", study_id="S2", created=T0 + timedelta(1)
        ),
        "c": image_set(store, study_date="19991122", study_time="140728.5", created=T0 + timedelta(2), primary=False),
        "d": image_set(store, study_date="20240501", study_time=None, created=T0 + timedelta(3), state=LOCKED),
        "e": image_set(store, study_date=None, created=T0 + timedelta(4)),
        "gone": image_set(store, created=T0 + timedelta(5), state=DELETED),
    }
    add(index, *sets.values())
    add(index, *(replace(s, datastore_id=other) for s in sets.values()))
    return store, sets


FILTERS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("patient", equal("DICOMPatientId", "PAT-1"), {"a", "c", "d", "e"}),
    ("accession", equal("DICOMAccessionNumber", "ACC-2"), {"b"}),
    ("study id", equal("DICOMStudyId", "S2"), {"b"}),
    ("study uid", equal("DICOMStudyInstanceUID", "1.2.3"), {"a", "c", "d", "e"}),
    ("primary", equal("isPrimary", True), {"a", "b", "d", "e"}),
    ("not primary", equal("isPrimary", False), {"c"}),
    ("empty patient id", equal("DICOMPatientId", ""), set()),
    ("unknown patient", equal("DICOMPatientId", "nobody"), set()),
    ("study date range", between("DICOMStudyDateAndTime", study_dt("20240501"), study_dt("20240502")), {"a", "b", "d"}),
    (
        "study date narrow",
        between("DICOMStudyDateAndTime", study_dt("20240501", "0830"), study_dt("20240501", "09")),
        {"a", "b"},
    ),
    ("study date equal", equal("DICOMStudyDateAndTime", study_dt("20240501")), {"d"}),
    ("created range", between("createdAt", T0 + timedelta(1), T0 + timedelta(3)), {"b", "c", "d"}),
    ("created equal", equal("createdAt", T0 + timedelta(2)), {"c"}),
    ("updated range", between("updatedAt", T0 - timedelta(1), T0 + timedelta(1, seconds=-1)), {"a"}),
]


@pytest.mark.parametrize(("label", "criteria", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_finds_exactly_its_image_sets(
    index: Index, corpus: tuple[str, dict[str, ImageSet]], label: str, criteria: dict[str, Any], expected: set[str]
) -> None:
    store, sets = corpus
    found = search(index, store, criteria)
    assert set(ids(found)) == {sets[name].image_set_id for name in expected}, label


def test_series_uid_filter_and_and_of_two(index: Index, corpus: tuple[str, dict[str, ImageSet]]) -> None:
    store, sets = corpus
    series = sets["c"].grouping.series_instance_uid
    assert ids(search(index, store, equal("DICOMSeriesInstanceUID", series))) == [sets["c"].image_set_id]
    both = {
        "filters": [
            {"operator": "EQUAL", "values": [{"DICOMPatientId": "PAT-1"}]},
            {"operator": "BETWEEN", "values": [{"createdAt": T0 + timedelta(2)}, {"createdAt": T0 + timedelta(9)}]},
        ]
    }
    assert set(ids(search(index, store, both))) == {sets[n].image_set_id for n in ("c", "d", "e")}
    contradiction = {
        "filters": [
            {"operator": "EQUAL", "values": [{"DICOMPatientId": "PAT-1"}]},
            {"operator": "EQUAL", "values": [{"DICOMPatientId": "PAT-2"}]},
        ]
    }
    assert search(index, store, contradiction) == []


def test_between_bounds_are_inclusive(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    low, mid, high = (
        image_set(store, created=T0 + timedelta(microseconds=n), study_time=f"08300{n}") for n in (1, 2, 3)
    )
    add(index, low, mid, high)
    exact = between("createdAt", low.created_at, high.created_at)
    assert set(ids(search(index, store, exact))) == {low.image_set_id, mid.image_set_id, high.image_set_id}
    inner = between(
        "createdAt", low.created_at + timedelta(microseconds=1), high.created_at - timedelta(microseconds=1)
    )
    assert ids(search(index, store, inner)) == [mid.image_set_id]
    dated = between("DICOMStudyDateAndTime", study_dt("20240501", "083001"), study_dt("20240501", "083003"))
    assert len(search(index, store, dated)) == 3
    dated = between("DICOMStudyDateAndTime", study_dt("20240501", "083001.000001"), study_dt("20240501", "083002"))
    assert ids(search(index, store, dated)) == [mid.image_set_id]


def test_deleted_never_found_locked_found(index: Index, corpus: tuple[str, dict[str, ImageSet]]) -> None:
    store, sets = corpus
    everything = search(index, store, None)
    assert sets["gone"].image_set_id not in ids(everything)
    assert sets["d"].image_set_id in ids(everything)
    assert len(everything) == 5
    index.run(lambda uow: uow.image_sets.update(replace(sets["a"], state=DELETED)))
    assert sets["a"].image_set_id not in ids(search(index, store, None))


def test_the_row_carries_the_summary(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    full = replace(
        image_set(store),
        summary=ImageSetSummary("DOE^JANE", "19700101", "F", "Chest CT ü", "083501.25", "CT", "CHEST", 120),
    )
    bare = replace(image_set(store), summary=None)
    empty = replace(image_set(store), summary=ImageSetSummary())
    add(index, full, bare, empty)
    got = index.run(lambda uow: uow.image_sets.get(store, full.image_set_id))
    assert got == full
    assert got is not None
    assert got.study_datetime == "20240501083501.250000"
    assert index.run(lambda uow: uow.image_sets.get(store, bare.image_set_id)) == bare
    assert index.run(lambda uow: uow.image_sets.get(store, empty.image_set_id)) == replace(empty, summary=None)
    assert index.run(lambda uow: uow.image_sets.get(store, bare.image_set_id)).study_datetime == (  # type: ignore[union-attr]
        "20240501000000.000000"
    )
    index.run(lambda uow: uow.image_sets.update(replace(full, summary=None)))
    assert index.run(lambda uow: uow.image_sets.get(store, full.image_set_id)) == replace(full, summary=None)


# -- order and pages ----------------------------------------------------------------------------------------


def expected_order(image_sets: list[ImageSet], field: SortField, descending: bool) -> list[str]:
    def value(s: ImageSet) -> Any:
        return {SortField.UPDATED_AT: s.updated_at, SortField.CREATED_AT: s.created_at}.get(field, s.study_datetime)

    dated = sorted((s for s in image_sets if value(s) is not None), key=lambda s: (value(s), s.image_set_id))
    undated = sorted((s for s in image_sets if value(s) is None), key=lambda s: s.image_set_id)
    if descending:
        dated.reverse()
        undated.reverse()
    return ids(dated + undated)


@pytest.fixture
def ties(index: Index, new_datastore: NewDatastore) -> tuple[str, list[ImageSet]]:
    """17 live image sets with many equal sort values (and 4 without a study date), plus a deleted one."""
    store = new_datastore()
    live = [
        image_set(
            store,
            patient="PAT-1" if n % 4 else "PAT-2",
            created=T0 + timedelta(hours=n % 3),
            updated=T0 + timedelta(hours=n % 4),
            study_date=None if n % 5 == 0 else f"2024050{1 + n % 2}",
            study_time="1200" if n % 3 else None,
            state=LOCKED if n == 7 else ACTIVE,
        )
        for n in range(17)
    ]
    add(index, *live, image_set(store, state=DELETED))
    return store, live


@pytest.mark.parametrize("field", list(SortField))
@pytest.mark.parametrize("order", ["ASC", "DESC"])
@pytest.mark.parametrize("filtered", [False, True], ids=["all", "patient filter"])
def test_sorts_and_keyset_pages_are_stable_with_ties(
    index: Index, ties: tuple[str, list[ImageSet]], field: SortField, order: str, filtered: bool
) -> None:
    store, live = ties
    criteria: dict[str, Any] = {"sort": {"sortField": field.value, "sortOrder": order}}
    if filtered:  # another column than the sort's drives the query (SQLite renders the sort column +column)
        live = [s for s in live if s.grouping.patient_id == "PAT-1"]
        criteria |= equal("DICOMPatientId", "PAT-1")
    expected = expected_order(live, field, order == "DESC")
    assert ids(search(index, store, criteria)) == expected
    for size in (1, 3, 4):
        pages: list[ImageSet] = []
        after: SearchCursor | None = None
        while page := search(index, store, criteria, after, size):
            assert len(page) <= size
            pages.extend(page)
            last = page[-1]
            value = {SortField.UPDATED_AT: last.updated_at, SortField.CREATED_AT: last.created_at}.get(
                field, last.study_datetime
            )
            after = SearchCursor(value, last.image_set_id)
        assert ids(pages) == expected


def test_default_sort_is_newest_update_first(index: Index, ties: tuple[str, list[ImageSet]]) -> None:
    store, live = ties
    assert ids(search(index, store, None)) == expected_order(live, SortField.UPDATED_AT, True)
    assert ids(search(index, store, {"filters": []})) == expected_order(live, SortField.UPDATED_AT, True)
    assert search(index, store, None, limit=0) == []


def test_study_date_sort_with_a_study_date_filter_has_no_undated_tail(
    index: Index, ties: tuple[str, list[ImageSet]]
) -> None:
    store, live = ties
    criteria = between("DICOMStudyDateAndTime", study_dt("20240101"), study_dt("20241231"))
    criteria["sort"] = {"sortField": "DICOMStudyDateAndTime", "sortOrder": "ASC"}
    dated = [s for s in live if s.study_datetime is not None]
    assert ids(search(index, store, criteria)) == expected_order(dated, SortField.STUDY_DATE_AND_TIME, False)


# -- study counts -------------------------------------------------------------------------------------------


def test_study_counts_cover_primary_live_image_sets(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    add(
        index,
        image_set(store, study="1.1", series="1.1.1", instances=10),
        image_set(store, study="1.1", series="1.1.2", instances=5, state=LOCKED),
        image_set(store, study="1.1", series="1.1.2", instances=100, primary=False),
        image_set(store, study="1.1", series="1.1.3", instances=7, state=DELETED),
        image_set(store, study="1.2", series="1.2.1", instances=3),
        image_set(store, study="1.3", series="1.3.1", instances=3, primary=False),
        image_set(other, study="1.1", series="1.1.9", instances=1000),
    )

    def counts(uids: list[str]) -> dict[str, tuple[int, int]]:
        return index.run(lambda uow: uow.image_sets.study_counts(store, uids), readonly=True)

    assert counts(["1.1", "1.2", "1.3", "9.9"]) == {"1.1": (2, 15), "1.2": (1, 3)}
    assert counts([]) == {}
    many = [f"2.{n}" for n in range(1200)] + ["1.2"]  # more than one IN list
    assert counts(many) == {"1.2": (1, 3)}


# -- lifecycle verbs ----------------------------------------------------------------------------------------


def test_set_state_is_a_compare_and_set_on_version_and_state(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    target, neighbour = image_set(store), image_set(store)
    add(index, target, neighbour)
    later = T0 + timedelta(hours=1)

    def cas(version: int, states: list[ImageSetState], state: ImageSetState, message: str | None = None) -> bool:
        return index.run(
            lambda uow: uow.image_sets.set_state(
                store, target.image_set_id, version, states, state, ImageSetWorkflowStatus.UPDATING, message, later
            )
        )

    assert not cas(2, [ACTIVE], LOCKED)  # wrong version
    assert not cas(1, [LOCKED, DELETED], LOCKED)  # wrong state
    assert not cas(1, [], LOCKED)
    assert cas(1, [ACTIVE], LOCKED, "busy")
    got = index.run(lambda uow: uow.image_sets.get(store, target.image_set_id))
    expected = replace(
        target, state=LOCKED, workflow_status=ImageSetWorkflowStatus.UPDATING, message="busy", updated_at=later
    )
    assert got == expected  # summary, grouping, version and times kept
    assert not cas(1, [ACTIVE], LOCKED)  # a second locker loses
    assert cas(1, [LOCKED, ACTIVE], ACTIVE)
    assert index.run(lambda uow: uow.image_sets.get(store, neighbour.image_set_id)) == neighbour
    assert not index.run(
        lambda uow: uow.image_sets.set_state(
            store, new_id(), 1, [ACTIVE], LOCKED, ImageSetWorkflowStatus.UPDATING, None, later
        )
    )


def test_count_locked_and_primary_in_study(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    first = image_set(store, study="7.7", created=T0 - timedelta(days=1))
    locked = image_set(store, study="7.7", state=LOCKED)
    add(
        index,
        locked,
        first,
        image_set(store, study="7.7", primary=False, state=LOCKED),
        image_set(store, study="7.7", state=DELETED),
        image_set(store, study="7.8"),
        image_set(other, study="7.7", state=LOCKED),
    )
    assert index.run(lambda uow: uow.image_sets.count_locked(store)) == 2
    assert index.run(lambda uow: uow.image_sets.count_locked(new_id())) == 0
    assert index.run(lambda uow: uow.image_sets.primary_in_study(store, "7.7")) == [first, locked]
    assert index.run(lambda uow: uow.image_sets.primary_in_study(store, "0.0")) == []


def version_of(one: ImageSet, number: int, key: str) -> ImageSetVersion:
    return ImageSetVersion(
        datastore_id=one.datastore_id,
        image_set_id=one.image_set_id,
        version_id=number,
        state=ACTIVE,
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=True,
        created_at=T0,
        updated_at=T0,
        metadata_key=key,
    )


def test_update_version_replaces_state_workflow_message_and_time(index: Index, new_datastore: NewDatastore) -> None:
    store = new_datastore()
    one = image_set(store)
    add(index, one)
    first, second = version_of(one, 1, "k1"), version_of(one, 2, "k2")
    index.run(lambda uow: (uow.image_sets.add_version(first), uow.image_sets.add_version(second)))
    changed = replace(
        first,
        state=LOCKED,
        workflow_status=ImageSetWorkflowStatus.COPYING,
        message="copying",
        updated_at=T0 + timedelta(seconds=5),
        metadata_key="ignored",
    )
    index.run(lambda uow: uow.image_sets.update_version(changed))
    assert index.run(lambda uow: uow.image_sets.get_version(store, one.image_set_id, 1)) == replace(
        changed, metadata_key="k1"
    )
    assert index.run(lambda uow: uow.image_sets.get_version(store, one.image_set_id, 2)) == second
    index.run(lambda uow: uow.image_sets.update_version(version_of(one, 9, "k9")))  # no row: nothing happens
    assert index.run(lambda uow: uow.image_sets.get_version(store, one.image_set_id, 9)) is None


def test_frames_and_documents_shared_with_live_image_sets(index: Index, new_datastore: NewDatastore) -> None:
    store, other = new_datastore(), new_datastore()
    mine, sibling, dead = image_set(store), image_set(store), image_set(store, state=DELETED)
    stranger = image_set(other)
    add(index, mine, sibling, dead, stranger)
    f1, f2, f3, f4 = (new_id() for _ in range(4))
    syntax = "1.2.840.10008.1.2.4.202"
    frames = [FrameRef(store, mine.image_set_id, f, syntax, 10) for f in (f3, f1, f2, f4)]
    index.run(
        lambda uow: uow.image_sets.add_frames(
            [
                *frames,
                FrameRef(store, sibling.image_set_id, f1, syntax, 10),
                FrameRef(store, dead.image_set_id, f2, syntax, 10),
                FrameRef(other, stranger.image_set_id, f3, syntax, 10),
            ]
        )
    )
    versions = [
        version_of(mine, 1, "doc-a"),
        version_of(mine, 2, "doc-b"),
        version_of(sibling, 1, "doc-a"),
        version_of(dead, 1, "doc-b"),
        version_of(stranger, 1, "doc-b"),
    ]
    index.run(lambda uow: [uow.image_sets.add_version(v) for v in versions])

    def run(call: Callable[[Any], Any]) -> Any:
        return index.run(lambda uow: call(uow.image_sets))

    assert run(lambda r: r.list_frames(store, mine.image_set_id)) == sorted(frames, key=lambda f: f.frame_id)
    assert run(lambda r: r.frames_used_elsewhere(store, mine.image_set_id, [f1, f2, f3, f4, f1])) == {f1}
    assert run(lambda r: r.frames_used_elsewhere(store, mine.image_set_id, [])) == set()
    assert run(lambda r: r.metadata_keys_used_elsewhere(store, mine.image_set_id, ["doc-a", "doc-b"])) == {"doc-a"}
    assert run(lambda r: r.metadata_keys_used_elsewhere(store, sibling.image_set_id, ["doc-a"])) == {"doc-a"}
    run(lambda r: r.delete_frames(store, mine.image_set_id))
    assert run(lambda r: r.list_frames(store, mine.image_set_id)) == []
    assert run(lambda r: r.frames_used_elsewhere(store, sibling.image_set_id, [f1])) == set()
    assert run(lambda r: r.list_frames(store, sibling.image_set_id)) == [
        FrameRef(store, sibling.image_set_id, f1, syntax, 10)
    ]
    assert run(lambda r: r.get_frame(other, stranger.image_set_id, f3)) is not None


# -- plans (SQLite: the planner's choice is deterministic without statistics) ---------------------------------


PLAN_CRITERIA: list[tuple[dict[str, Any] | None, str]] = [
    (equal("DICOMPatientId", "P"), "patient_id"),
    (equal("DICOMAccessionNumber", "A"), "accession_number"),
    (equal("DICOMStudyId", "S"), "study_id"),
    (equal("DICOMStudyInstanceUID", "1.2"), "study_instance_uid"),
    (equal("DICOMSeriesInstanceUID", "1.2"), "series_instance_uid"),
    (between("DICOMStudyDateAndTime", study_dt("20240101"), study_dt("20240102")), "study_datetime"),
    (between("createdAt", T0, T0 + timedelta(1)), "created_at"),
    (between("updatedAt", T0, T0 + timedelta(1)), "updated_at"),
    ({"sort": {"sortField": "createdAt", "sortOrder": "ASC"}}, "created_at"),
    ({"sort": {"sortField": "DICOMStudyDateAndTime", "sortOrder": "DESC"}}, "study_datetime"),
    (None, "updated_at"),
    (equal("isPrimary", True), "updated_at"),
    (
        {
            "filters": [
                between("updatedAt", T0, T0 + timedelta(1))["filters"][0],
                equal("DICOMSeriesInstanceUID", "1.2")["filters"][0],
            ],
            "sort": {"sortField": "updatedAt", "sortOrder": "ASC"},
        },
        "series_instance_uid",
    ),
]


@pytest.fixture
def sqlite_index(tmp_path: Path) -> Iterator[SqlIndex]:
    """Query plans are checked on SQLite only: its planner has no statistics to go by (PostgreSQL's has)."""
    index = SqlIndex.open(f"sqlite:///{tmp_path / 'plans.db'}")
    yield index
    index.close()


@pytest.mark.parametrize(("criteria", "column"), PLAN_CRITERIA)
@pytest.mark.parametrize("page", ["first", "next"])
def test_sqlite_answers_every_filter_and_sort_from_the_right_index(
    sqlite_index: SqlIndex, criteria: dict[str, Any] | None, column: str, page: str
) -> None:
    from sqlalchemy import Connection

    from openhi.index.sql import image_set_search
    from openhi.index.sql.repositories import SqlUnitOfWork

    query: SearchQuery = parse_criteria(criteria)
    sort = image_set_search.sort_column(query)
    after = "20240101000000.000000" if query.sort.field is SortField.STUDY_DATE_AND_TIME else T0

    def plan(uow: UnitOfWork) -> str:
        conn: Connection = cast(SqlUnitOfWork, uow).image_sets.conn
        statement = image_set_search._base("d" * 32, query)
        if page == "next":
            statement = statement.where(image_set_search._after(sort, True, after, "c" * 32))
        statement = image_set_search._ordered(statement, sort, True, 51)
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))

    text = sqlite_index.run(plan, readonly=True)
    assert f"USING INDEX ix_image_sets_datastore_id_{column}" in text, text
