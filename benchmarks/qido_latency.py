"""QIDO-RS study-level search latency at 10k and 100k+ studies, against a primary-key get on the same index.

Synthetic ``catalog_studies`` rows (what ``write_version`` keeps for each study of the primary image sets) are
bulk-inserted straight into a migrated index (COPY on PostgreSQL, one executemany transaction on SQLite), growing
one data store 10k -> 100k (-> 1M). At each size the searches run in-process through ``QidoSearch.studies`` (query
parsing, the index query, the DICOM JSON of every result; no HTTP): one study by StudyInstanceUID, PatientID
(~3 studies per patient), PatientName exact and prefix wildcard (``DOE^PATIENT123*``), StudyDate over one day
and over one month (limit 100), the first page of the study list (limit 101, what OHIF asks), and the two
queries that cannot use an index — a ``*substring*`` wildcard and fuzzy matching — which scan the data store's
studies. The baseline, in the same run, is a GetImageSet-like read: one read-only unit of work that loads the
data store by primary key. PostgreSQL gets ANALYZE after each load; SQLite gets none (a fresh embedded install).

Run: ``.venv/bin/python benchmarks/qido_latency.py [--sizes 10000,100000] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._sql_latency import T0, Benchmark, Figure, timed

from openhi.catalog.query import name_words, normalize_name
from openhi.datastores.service import load_datastore
from openhi.dicomweb.qido.service import QidoSearch
from openhi.index.port import UnitOfWork
from openhi.index.sql.adapter import SqlIndex
from openhi.index.sql.schema import catalog_studies

DATASTORE = "c" * 32
BASE = f"http://127.0.0.1/datastore/{DATASTORE}"
FIRST_STUDY_DAY = date(2000, 1, 1)
STUDY_DAYS = 7300
UID_ROOT = "1.2.826.0.1.3680043.10.1337"


def rows(start: int, count: int, seed: int) -> Iterator[dict[str, Any]]:
    """Study rows ``start .. start + count``: ~3 studies per patient, CT/MR/PT, 3 series of 100 instances."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    for n in range(start, start + count):
        day = (FIRST_STUDY_DAY + timedelta(days=rng.randrange(STUDY_DAYS))).strftime("%Y%m%d")
        moment = f"{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
        name = f"DOE^PATIENT{n // 3}"
        study_uid = f"{UID_ROOT}.{n}"
        modalities = rng.choice(["CT", "MR", "CT|PT"])
        attributes = {
            "DICOM": {
                "PatientName": name,
                "PatientID": f"PAT{n // 3}",
                "PatientBirthDate": "19700101",
                "PatientSex": "F",
                "StudyInstanceUID": study_uid,
                "StudyDate": day,
                "StudyTime": moment,
                "AccessionNumber": f"ACC{n}",
                "StudyID": str(n % 10000),
                "StudyDescription": "Synthetic CT",
                "ReferringPhysicianName": "SMITH^JANE",
            },
            "DICOMVRs": {},
        }
        yield {
            "datastore_id": DATASTORE,
            "study_uid": study_uid,
            "patient_name": name,
            "patient_name_norm": normalize_name(name),
            "patient_name_words": " " + " ".join(name_words(normalize_name(name))) + " ",
            "patient_id": f"PAT{n // 3}",
            "patient_birth_date": "19700101",
            "patient_birth_time": None,
            "patient_sex": "F",
            "study_date": day,
            "study_time": f"{moment}.000000",
            "accession_number": f"ACC{n}",
            "study_id": str(n % 10000),
            "study_description": "Synthetic CT",
            "referring_physician_name": "SMITH^JANE",
            "referring_physician_name_norm": "smith^jane",
            "referring_physician_name_words": " smith jane ",
            "modalities": modalities,
            "series_count": 3,
            "instance_count": 300,
            "updated_at": T0 + timedelta(seconds=n * 7 + rng.randrange(5)),
            "attributes": json.dumps(attributes, separators=(",", ":")),
        }


def measure(index: SqlIndex, size: int, count: int) -> list[Figure]:
    search = QidoSearch(index)
    rng = random.Random(size)  # noqa: S311 - synthetic data, not security

    def get() -> object:
        def work(uow: UnitOfWork) -> object:
            return load_datastore(uow, DATASTORE)

        return index.run(work, readonly=True)

    def studies(make: Callable[[], list[tuple[str, str]]], *, nonempty: bool = True) -> Callable[[], object]:
        def call() -> object:
            pairs = make()
            found = search.studies(DATASTORE, pairs, BASE)
            assert found or not nonempty, pairs
            return found

        return call

    def a_day() -> str:
        return (FIRST_STUDY_DAY + timedelta(days=rng.randrange(STUDY_DAYS))).strftime("%Y%m%d")

    def a_month() -> str:
        first = FIRST_STUDY_DAY + timedelta(days=rng.randrange(STUDY_DAYS - 31))
        return f"{first:%Y%m%d}-{first + timedelta(days=30):%Y%m%d}"

    patients = size // 3
    figures = [
        ("baseline: get by primary key", get),
        ("StudyInstanceUID=<uid>", studies(lambda: [("StudyInstanceUID", f"{UID_ROOT}.{rng.randrange(size)}")])),
        ("PatientID=<id> (~3 studies)", studies(lambda: [("PatientID", f"PAT{rng.randrange(patients)}")])),
        ("PatientName=<exact, any case>", studies(lambda: [("PatientName", f"doe^patient{rng.randrange(patients)}")])),
        (
            "PatientName=DOE^PATIENTn* (prefix)",
            studies(lambda: [("PatientName", f"DOE^PATIENT{rng.randrange(patients)}*"), ("limit", "100")]),
        ),
        ("StudyDate=<one day>", studies(lambda: [("StudyDate", a_day())], nonempty=False)),
        ("StudyDate=<a month>&limit=100", studies(lambda: [("StudyDate", a_month()), ("limit", "100")])),
        ("first page, limit=101 (OHIF)", studies(lambda: [("limit", "101")])),
        (
            "PatientName=*TIENTn* (scan)",
            studies(lambda: [("PatientName", f"*TIENT{rng.randrange(patients)}*"), ("limit", "101")]),
        ),
        (
            "fuzzymatching PatientName=patientn (scan)",
            studies(
                lambda: [("PatientName", f"patient{rng.randrange(patients)}"), ("fuzzymatching", "true")],
            ),
        ),
    ]
    return [(label, *timed(count, call, warmup=10)) for label, call in figures]


BENCHMARK = Benchmark(
    DATASTORE, catalog_studies, frozenset({"updated_at"}), rows, measure, "studies", "studies", "query", 42
)


def main() -> None:
    BENCHMARK.main(__doc__, sizes="10000,100000", requests=100, through="QidoSearch.studies")


if __name__ == "__main__":
    main()
