"""The QIDO-RS catalog port (``DicomCatalogRepository``) on memory, SQLite and PostgreSQL.

Every adapter must answer what a brute-force scan of the documents answers (``tests.support.catalog_docs``),
in the guide's orders (2226-2228), with paging; follow image sets as they are rewritten and removed; list the
image sets the backfill still has to catalog; and on SQLite each study filter and the sort use an index.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from tests.contract.conftest import T0
from tests.support.catalog_docs import brute_studies, document, instance, series

from openhi.blobs.memory import MemoryBlobStore
from openhi.catalog.derive import catalog_of
from openhi.catalog.query import Level
from openhi.dicom.normalize import GroupingKey
from openhi.dicomweb.qido.backfill import CatalogBackfill
from openhi.dicomweb.qido.params import parse_query
from openhi.ids import new_id
from openhi.imagesets.model import ImageSetState, ImageSetWorkflowStatus
from openhi.imagesets.versions import NewVersion, store_document, write_version
from openhi.index.port import Index, UnitOfWork
from openhi.index.sql.adapter import SqlIndex

NAMES = ["Thomas^Albert", "thomas", "DOE^JOHN", "Doe^Jane", "Müller^Jürgen", "Albertson^Tom", None]
DESCRIPTIONS = ["Nuclear Med", "CT Chest", "Brain MRI", "nuclear", None]
MODALITIES = ["CT", "MR", "PT", None]
DATES = ["20200101", "20200229", "20211231", "19991231", None]
TIMES = ["1030", "103015.5", "235959", None]


def _corpus(seed: int = 7, count: int = 30) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    docs = []
    for n in range(count):
        study_uid = f"1.2.{rng.randrange(12)}"
        pick: Callable[[list[Any]], Any] = rng.choice
        patient = {"PatientName": pick(NAMES), "PatientID": pick(["P1", "P2", "p1", "P10", None])}
        study = {
            "StudyDate": pick(DATES),
            "StudyTime": pick(TIMES),
            "StudyDescription": pick(DESCRIPTIONS),
            "AccessionNumber": pick(["A1", "A2", "ACC-3", None]),
            "ReferringPhysicianName": pick(NAMES),
            "StudyID": pick(["S1", "S2", None]),
            "PatientBirthDate": pick(DATES),
        }
        series_uid = f"{study_uid}.{n}"
        instances = [
            instance(f"{series_uid}.{k}", rng.choice([k, None]), warnings=rng.choice([[], [1], [1, 5], [12]]))
            for k in range(1, rng.randrange(2, 5))
        ]
        docs.append(
            document(
                study_uid,
                [series(series_uid, instances, modality=pick(MODALITIES), number=rng.choice([n % 4, None]))],
                patient={k: v for k, v in patient.items() if v is not None},
                study={k: v for k, v in study.items() if v is not None},
            )
        )
    return docs


def _put(index: Index, datastore_id: str, docs: list[dict[str, Any]]) -> list[str]:
    ids = []
    for position, doc in enumerate(docs):
        image_set_id = f"{position:032x}"
        catalog = catalog_of(doc)
        at = T0 + timedelta(seconds=position)
        index.run(lambda uow, i=image_set_id, c=catalog, t=at: uow.catalog.put_image_set(datastore_id, i, 1, c, t))
        ids.append(image_set_id)
    return ids


QUERIES: list[list[tuple[str, str]]] = [
    [],
    [("PatientName", "thomas")],
    [("PatientName", "THOM*")],
    [("PatientName", "*albert*")],
    [("PatientName", "Doe^J???")],
    [("PatientName", "thomas albert"), ("fuzzymatching", "true")],
    [("PatientName", "tom"), ("fuzzymatching", "true")],
    [("PatientName", "mül"), ("fuzzymatching", "true")],
    [("ReferringPhysicianName", "doe"), ("fuzzymatching", "true")],
    [("ReferringPhysicianName", "*^*")],
    [("PatientID", "P1")],
    [("00100020", "p1")],
    [("PatientID", "P?")],
    [("PatientID", "P*")],
    [("StudyDescription", "*Nuclear*")],
    [("StudyDescription", "nuclear")],
    [("StudyDate", "20200101")],
    [("StudyDate", "20200101-20211231")],
    [("StudyDate", "-20200101")],
    [("StudyDate", "20200201-")],
    [("StudyTime", "10")],
    [("StudyTime", "1030-1100")],
    [("StudyTime", "2359-")],
    [("PatientBirthDate", "19991231-20200101")],
    [("ModalitiesInStudy", "CT")],
    [("ModalitiesInStudy", "CT\\MR")],
    [("ModalitiesInStudy", "?T")],
    [("ModalitiesInStudy", "*")],
    [("AccessionNumber", "A*")],
    [("AccessionNumber", "ACC-?")],
    [("StudyID", "S1"), ("PatientID", "P1")],
    [("StudyInstanceUID", "1.2.1\\1.2.3,1.2.11")],
]


@pytest.mark.parametrize("pairs", QUERIES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p) or "all")
def test_studies_match_a_brute_force_scan(
    index: Index, new_datastore: Callable[[], str], pairs: list[tuple[str, str]]
) -> None:
    datastore_id = new_datastore()
    docs = _corpus()
    _put(index, datastore_id, docs)
    query = parse_query(Level.STUDY, pairs)
    found = index.run(lambda uow: uow.catalog.search_studies(datastore_id, query.conditions, 0, 1000), readonly=True)
    assert [study.study_uid for study in found] == brute_studies(docs, query.conditions)


def test_study_rows_aggregate_counts_modalities_and_latest_attributes(
    index: Index, new_datastore: Callable[[], str]
) -> None:
    datastore_id = new_datastore()
    first = document("1.5", [series("1.5.1", [instance("1.5.1.1", 1)], modality="CT")], patient={"PatientID": "A"})
    second = document(
        "1.5",
        [series("1.5.2", [instance("1.5.2.1", 1), instance("1.5.2.2", 2)], modality="MR")],
        patient={"PatientID": "B"},
    )
    ids = _put(index, datastore_id, [first, second])
    [study] = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert (study.series_count, study.instance_count, study.modalities) == (2, 3, ("CT", "MR"))
    assert study.fields.patient_id == "B"
    assert study.updated_at == T0 + timedelta(seconds=1)
    index.run(lambda uow: uow.catalog.remove_image_set(datastore_id, ids[1]))
    [study] = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert (study.series_count, study.instance_count, study.modalities, study.fields.patient_id) == (1, 1, ("CT",), "A")
    index.run(lambda uow: uow.catalog.remove_image_set(datastore_id, ids[0]))
    assert index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10)) == []
    assert index.run(lambda uow: uow.catalog.series_of_study(datastore_id, "1.5")) == []


def test_rewriting_an_image_set_replaces_its_rows(index: Index, new_datastore: Callable[[], str]) -> None:
    datastore_id = new_datastore()
    before = document("1.6", [series("1.6.1", [instance("1.6.1.1", 1), instance("1.6.1.2", 2)])])
    after = document("1.7", [series("1.6.1", [instance("1.6.1.1", 5, warnings=[1]), instance("1.6.1.3", 3)])])
    [image_set] = _put(index, datastore_id, [before])
    index.run(lambda uow: uow.catalog.put_image_set(datastore_id, image_set, 2, catalog_of(after), T0))
    studies = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert [s.study_uid for s in studies] == ["1.7"]  # the old study has no image set left
    rows = index.run(lambda uow: uow.catalog.search_instances(datastore_id, "1.7", "1.6.1", [], 0, 10))
    assert [(r.instance.sop_uid, r.instance.instance_number, r.instance.warning_reasons) for r in rows] == [
        ("1.6.1.3", 3, ()),
        ("1.6.1.1", 5, (1,)),
    ]


def test_series_and_instances_are_ordered_and_paged(index: Index, new_datastore: Callable[[], str]) -> None:
    datastore_id = new_datastore()
    docs = [
        document(
            "1.8",
            [series(f"1.8.{n}", [instance(f"1.8.{n}.{k}", number) for k, number in enumerate([3, None, 1, 2])])],
        )
        for n in range(3)
    ]
    docs[0]["Study"]["Series"]["1.8.0"]["DICOM"]["SeriesNumber"] = "7"
    docs[1]["Study"]["Series"]["1.8.1"]["DICOM"].pop("SeriesNumber")
    docs[2]["Study"]["Series"]["1.8.2"]["DICOM"]["SeriesNumber"] = "2"
    _put(index, datastore_id, docs)
    found = index.run(lambda uow: uow.catalog.search_series(datastore_id, "1.8", [], 0, 10))
    assert [row.series.series_uid for row in found] == ["1.8.2", "1.8.0", "1.8.1"]
    page = index.run(lambda uow: uow.catalog.search_series(datastore_id, "1.8", [], 1, 1))
    assert [row.series.series_uid for row in page] == ["1.8.0"]
    rows = index.run(lambda uow: uow.catalog.search_instances(datastore_id, "1.8", "1.8.0", [], 0, 10))
    assert [row.instance.sop_uid for row in rows] == ["1.8.0.2", "1.8.0.3", "1.8.0.0", "1.8.0.1"]
    rows = index.run(lambda uow: uow.catalog.search_instances(datastore_id, "1.8", None, [], 2, 5))
    assert [row.instance.sop_uid for row in rows] == ["1.8.2.0", "1.8.2.1", "1.8.0.2", "1.8.0.3", "1.8.0.0"]


@pytest.mark.parametrize(
    ("level", "pairs"),
    [
        (Level.SERIES, [("Modality", "C*")]),
        (Level.SERIES, [("SeriesNumber", "1")]),
        (Level.INSTANCE, [("WarningReason", "*")]),
        (Level.INSTANCE, [("WarningReason", "1")]),
        (Level.INSTANCE, [("WarningReason", "1\\12")]),
        (Level.INSTANCE, [("WarningReason", "?2")]),
        (Level.INSTANCE, [("InstanceNumber", "2")]),
        (Level.INSTANCE, [("Modality", "MR")]),
        (Level.INSTANCE, [("SOPInstanceUID", "1.2.3.7.1\\1.2.3.9.2")]),
    ],
)
def test_series_and_instance_filters_agree_with_the_memory_reference(
    index: Index, new_datastore: Callable[[], str], level: Level, pairs: list[tuple[str, str]]
) -> None:
    from openhi.catalog.query import matches
    from openhi.catalog.values import instance_value, series_value

    datastore_id = new_datastore()
    docs = _corpus()
    _put(index, datastore_id, docs)
    query = parse_query(level, pairs)
    for study_uid in sorted({d["Study"]["DICOM"]["StudyInstanceUID"] for d in docs}):
        every_series = index.run(lambda uow, s=study_uid: uow.catalog.series_of_study(datastore_id, s))
        if level is Level.SERIES:
            found = index.run(
                lambda uow, s=study_uid: uow.catalog.search_series(datastore_id, s, query.conditions, 0, 1000)
            )
            expected = [
                r
                for r in every_series
                if all(matches(c, series_value(r.series, c.attribute)) for c in query.conditions)
            ]
            assert found == expected
        else:
            every = index.run(lambda uow, s=study_uid: uow.catalog.search_instances(datastore_id, s, None, [], 0, 1000))
            found_rows = index.run(
                lambda uow, s=study_uid: uow.catalog.search_instances(datastore_id, s, None, query.conditions, 0, 1000)
            )
            assert found_rows == [
                r for r in every if all(matches(c, instance_value(r.instance, c.attribute)) for c in query.conditions)
            ]


def _write(index: Index, datastore_id: str, doc: dict[str, Any], *, primary: bool, derive: bool) -> str:
    """Write a first version like the import does; without ``derive`` as code older than the catalog did."""
    image_set_id = new_id()
    fields: dict[str, Any] = {
        "datastore_id": datastore_id,
        "image_set_id": image_set_id,
        "version_id": 1,
        "metadata_key": store_document(_BLOBS, datastore_id, doc),
        "workflow_status": ImageSetWorkflowStatus.CREATED,
        "is_primary": primary,
        "grouping": GroupingKey(None, None, None, doc["Study"]["DICOM"]["StudyInstanceUID"], None, None, None),
        "created_at": T0,
    }
    new = NewVersion.of(doc, **fields) if derive else NewVersion(**fields)
    index.run(lambda uow: write_version(uow, new, T0))
    return image_set_id


_BLOBS = MemoryBlobStore()


def test_versions_keep_the_catalog_and_the_backfill_fills_in_older_image_sets(
    index: Index, new_datastore: Callable[[], str]
) -> None:
    datastore_id = new_datastore()
    doc = document("1.3.1", [series("1.3.1.1", [instance("1.3.1.1.1", 1)])], patient={"PatientID": "old"})
    primary = _write(index, datastore_id, doc, primary=True, derive=True)
    other = document("1.3.2", [series("1.3.2.1", [instance("1.3.2.1.1", 1)])])
    _write(index, datastore_id, other, primary=False, derive=True)
    studies = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert [s.study_uid for s in studies] == ["1.3.1"]  # non-primary image sets are not searchable
    assert index.run(lambda uow: uow.catalog.uncataloged(100)) == []

    legacy = [
        _write(
            index,
            datastore_id,
            document(f"1.4.{n}", [series(f"1.4.{n}.1", [instance(f"1.4.{n}.1.1", 1)])]),
            primary=True,
            derive=False,
        )
        for n in range(3)
    ]
    _write(index, datastore_id, document("1.4.9", [series("1.4.9.1", [])]), primary=False, derive=False)
    pending = index.run(lambda uow: uow.catalog.uncataloged(100))
    assert sorted(image_set for _, image_set, _ in pending) == sorted(legacy)
    backfill = CatalogBackfill(index, _BLOBS, batch=2)
    assert backfill.run_once() == 2
    backfill.step()
    assert index.run(lambda uow: uow.catalog.uncataloged(100)) == []
    studies = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert sorted(s.study_uid for s in studies) == ["1.3.1", "1.4.0", "1.4.1", "1.4.2"]

    # a deleted image set leaves the catalog
    def delete(uow: UnitOfWork) -> None:
        image_set = uow.image_sets.get(datastore_id, primary)
        assert image_set is not None
        uow.image_sets.set_state(
            datastore_id,
            primary,
            1,
            [ImageSetState.ACTIVE],
            ImageSetState.DELETED,
            ImageSetWorkflowStatus.DELETED,
            None,
            T0,
        )
        uow.catalog.remove_image_set(datastore_id, primary)

    index.run(delete)
    studies = index.run(lambda uow: uow.catalog.search_studies(datastore_id, [], 0, 10))
    assert "1.3.1" not in {s.study_uid for s in studies}
    assert index.run(lambda uow: uow.catalog.uncataloged(100)) == []


# -- plans (SQLite) -----------------------------------------------------------------------------------------------

PLAN_QUERIES: list[tuple[list[tuple[str, str]], str]] = [
    ([], "updated_at_study_uid"),
    ([("PatientID", "P1")], "patient_id"),
    ([("PatientID", "P1*")], "patient_id"),
    ([("PatientName", "doe^john")], "patient_name_norm"),
    ([("PatientName", "doe*")], "patient_name_norm"),
    ([("AccessionNumber", "A1")], "accession_number"),
    ([("StudyDate", "20200101-20201231")], "study_date"),
    ([("StudyID", "S1")], "study_id"),
    ([("PatientBirthDate", "19700101")], "patient_birth_date"),
    ([("ReferringPhysicianName", "doe")], "referring_physician_name_norm"),
]


@pytest.mark.parametrize(("pairs", "index_name"), PLAN_QUERIES)
def test_sqlite_answers_study_filters_from_an_index(
    tmp_path: Path, pairs: list[tuple[str, str]], index_name: str
) -> None:
    from sqlalchemy import Connection

    from openhi.index.sql.catalog import studies_statement
    from openhi.index.sql.repositories import SqlUnitOfWork

    sqlite = SqlIndex.open(f"sqlite:///{tmp_path / 'plans.db'}")
    query = parse_query(Level.STUDY, pairs)

    def plan(uow: UnitOfWork) -> str:
        conn: Connection = cast(SqlUnitOfWork, uow).catalog.conn
        statement = studies_statement("d" * 32, query.conditions, binary_order=True).limit(1000)
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))

    try:
        text = sqlite.run(plan, readonly=True)
    finally:
        sqlite.close()
    assert f"INDEX ix_catalog_studies_datastore_id_{index_name}" in text, text


# -- plans (PostgreSQL) -------------------------------------------------------------------------------------------

PREFIX_PLAN_QUERIES: list[tuple[list[tuple[str, str]], str]] = [
    ([("PatientName", "doe*")], "patient_name_norm"),
    ([("PatientID", "P1999*")], "patient_id"),
    ([("AccessionNumber", "A1999*")], "accession_number"),
]


@pytest.mark.postgres
def test_postgres_answers_prefix_wildcards_from_a_code_point_ordered_index(postgres_url: str) -> None:
    """Migration 0005: ``DOE*`` is a range on ``column COLLATE "C"`` served by its index, not a scan."""
    from sqlalchemy import Connection, insert

    from openhi.index.sql.catalog import studies_statement
    from openhi.index.sql.repositories import SqlUnitOfWork
    from openhi.index.sql.schema import catalog_studies, datastores

    pg = SqlIndex.open(postgres_url)
    datastore_id = "d" * 32
    rng = random.Random(7)  # noqa: S311 - test data, not secrets

    def load(uow: UnitOfWork) -> None:
        conn: Connection = cast(SqlUnitOfWork, uow).catalog.conn
        conn.execute(
            insert(datastores).values(
                datastore_id=datastore_id, name="plans", status="ACTIVE", lossless_storage_format="HTJ2K",
                client_token="plans", created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        names = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=8)) for _ in range(20_000)]
        conn.execute(
            insert(catalog_studies),
            [
                {
                    "datastore_id": datastore_id, "study_uid": f"1.2.{n}", "patient_name_norm": f"{name}^x",
                    "patient_id": f"P{n}", "accession_number": f"A{n}", "series_count": 1, "instance_count": 1,
                    "updated_at": T0, "attributes": "{}",
                }
                for n, name in enumerate(names)
            ],
        )  # fmt: skip
        conn.exec_driver_sql("ANALYZE catalog_studies")

    def plan(pairs: list[tuple[str, str]]) -> Callable[[UnitOfWork], str]:
        def run(uow: UnitOfWork) -> str:
            conn: Connection = cast(SqlUnitOfWork, uow).catalog.conn
            query = parse_query(Level.STUDY, pairs)
            statement = studies_statement(datastore_id, query.conditions, binary_order=False).limit(1000)
            compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
            return "\n".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))

        return run

    try:
        pg.run(load)
        for pairs, column in PREFIX_PLAN_QUERIES:
            text = pg.run(plan(pairs), readonly=True)
            assert f"ix_catalog_studies_{column}_c" in text, text
        found = pg.run(lambda uow: uow.catalog.search_studies(datastore_id, parse_query(
            Level.STUDY, [("PatientID", "P1999*")]).conditions, 0, 100))  # fmt: skip
        assert sorted(s.study_uid for s in found) == sorted(f"1.2.{n}" for n in [1999, *range(19990, 20000)])
    finally:
        pg.close()
