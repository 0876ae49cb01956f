"""SearchImageSets latency at 10k, 100k and 1M image sets, against a primary-key lookup on the same index.

Synthetic ``image_sets`` rows are bulk-inserted straight into a migrated index (COPY on PostgreSQL, one
executemany transaction on SQLite), growing one data store 10k -> 100k -> 1M. At each size the search runs
in-process through ``ImageSetSearch`` (criteria parsing, the index query, study counts, token): EQUAL
DICOMPatientId (~10 image sets per patient), BETWEEN DICOMStudyDateAndTime over one day (~N/7300 image sets,
sorted by updatedAt), and the first page of an unfiltered search (50 newest). The baseline, in the same run,
is a GetImageSet-like read: one read-only unit of work that loads the data store and the image set by
primary key. PostgreSQL gets ANALYZE after each load (autovacuum would do it); SQLite gets none, as a fresh
embedded install has none. Flat p95 from 10k to 1M means index range scans, not scans of the data store.

Run: ``.venv/bin/python benchmarks/search_latency.py [--sizes 10000,100000,1000000] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.backends import fresh_postgres_database

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.datastores.service import load_datastore
from openhi.imagesets.search import ImageSetSearch
from openhi.index.port import UnitOfWork
from openhi.index.sql.adapter import SqlIndex
from openhi.index.sql.schema import format_sqlite_time, image_sets
from openhi.search.criteria import SearchQuery
from openhi.search.tokens import TokenCodec

DATASTORE = "b" * 32
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIRST_STUDY_DAY = date(2000, 1, 1)
STUDY_DAYS = 7300  # 20 years of study dates
COLUMNS = [column.name for column in image_sets.columns]


def rows(start: int, count: int, seed: int) -> Iterator[dict[str, Any]]:
    """Image set rows ``start .. start + count``: ~10 per patient, ~3 series per study, 98% ACTIVE."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    for n in range(start, start + count):
        study = n // 3
        day = FIRST_STUDY_DAY + timedelta(days=rng.randrange(STUDY_DAYS))
        moment = f"{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
        created = T0 + timedelta(seconds=n * 7 + rng.randrange(5))
        state = rng.choices(["ACTIVE", "LOCKED", "DELETED"], [98, 1, 1])[0]
        yield {
            "datastore_id": DATASTORE,
            "image_set_id": f"{rng.getrandbits(128):032x}",
            "version_id": 1,
            "state": state,
            "workflow_status": "CREATED",
            "is_primary": rng.random() < 0.95,
            "created_at": created,
            "updated_at": created + timedelta(seconds=rng.randrange(3600)),
            "deleted_at": None,
            "message": None,
            "study_date": day.strftime("%Y%m%d"),
            "accession_number": f"ACC{study}",
            "patient_id": f"PAT{n // 10}",
            "study_instance_uid": f"1.2.826.0.1.3680043.10.1337.{study}",
            "study_id": str(study % 10000),
            "series_instance_uid": f"1.2.826.0.1.3680043.10.1337.{study}.{n % 3}",
            "series_number": str(n % 3 + 1),
            "patient_name": f"DOE^PATIENT{n // 10}",
            "patient_birth_date": "19700101",
            "patient_sex": "F",
            "study_description": "Synthetic CT",
            "study_time": moment,
            "series_modality": "CT",
            "series_body_part": "CHEST",
            "instance_count": 100,
            "study_datetime": f"{day.strftime('%Y%m%d')}{moment}.000000",
        }


def load_postgres(url: str, start: int, count: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY image_sets ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(start, count, start):
                copy.write_row([row[name] for name in COLUMNS])
        cursor.execute("ANALYZE image_sets")


def load_sqlite(path: Path, start: int, count: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        marks = ", ".join("?" for _ in COLUMNS)
        times = {"created_at", "updated_at"}

        def values(row: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(format_sqlite_time(row[c]) if c in times else row[c] for c in COLUMNS)

        with conn:
            conn.executemany(
                f"INSERT INTO image_sets ({', '.join(COLUMNS)}) VALUES ({marks})",  # noqa: S608 - schema names
                (values(row) for row in rows(start, count, start)),
            )
    finally:
        conn.close()


def timed(count: int, call: Callable[[], object]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of ``count`` calls after a warm-up."""
    for _ in range(min(20, count)):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=20)[18]


def measure(index: SqlIndex, size: int, count: int) -> list[tuple[str, float, float]]:
    search = ImageSetSearch(index, TokenCodec(b"bench" * 8))
    rng = random.Random(size)  # noqa: S311 - synthetic data, not security
    known = index.run(
        lambda uow: [s.image_set_id for s in uow.image_sets.search(DATASTORE, SearchQuery(), None, 200)],
        readonly=True,
    )

    def get() -> object:
        def work(uow: UnitOfWork) -> object:
            load_datastore(uow, DATASTORE)
            return uow.image_sets.get(DATASTORE, rng.choice(known))

        return index.run(work, readonly=True)

    def by_patient() -> object:
        criteria = {
            "filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": f"PAT{rng.randrange(size // 10)}"}]}]
        }
        page = search.search(DATASTORE, criteria, None, None)
        assert page.hits, criteria
        return page

    def by_study_day() -> object:
        day = FIRST_STUDY_DAY + timedelta(days=rng.randrange(STUDY_DAYS))
        text = day.strftime("%Y%m%d")
        bounds = [
            {"DICOMStudyDateAndTime": {"DICOMStudyDate": text}},
            {"DICOMStudyDateAndTime": {"DICOMStudyDate": text, "DICOMStudyTime": "235959.999999"}},
        ]
        return search.search(DATASTORE, {"filters": [{"operator": "BETWEEN", "values": bounds}]}, None, None)

    def newest() -> object:
        return search.search(DATASTORE, None, None, None)

    return [
        ("baseline: get by primary key", *timed(count, get)),
        ("EQUAL DICOMPatientId", *timed(count, by_patient)),
        ("BETWEEN DICOMStudyDateAndTime (1 day)", *timed(count, by_study_day)),
        ("no filter, first page (50)", *timed(count, newest)),
    ]


def run(backend: str, sizes: list[int], count: int) -> None:
    with ExitStack() as stack:
        if backend == "postgres":
            url = stack.enter_context(fresh_postgres_database())
        else:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "index.db"
            url = f"sqlite:///{path}"
        index = SqlIndex.open(url)
        stack.callback(index.close)
        index.run(
            lambda uow: uow.datastores.add(
                Datastore(DATASTORE, "bench", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "bench")
            )
        )
        loaded = 0
        for size in sizes:
            started = time.perf_counter()
            if backend == "postgres":
                load_postgres(url, loaded, size - loaded)
            else:
                load_sqlite(path, loaded, size - loaded)
            print(f"[{backend}] loaded {size - loaded} rows in {time.perf_counter() - started:.1f} s", flush=True)
            loaded = size
            results = measure(index, size, count)
            baseline = results[0][2]
            for label, p50, p95 in results:
                print(f"{backend:<10}{size:>10,}  {label:<40}{p50:>9.2f}{p95:>9.2f}{p95 / baseline:>12.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print(f"{args.requests} calls per figure, in-process through ImageSetSearch (no HTTP)")
    print(f"{'backend':<10}{'image sets':>10}  {'operation':<40}{'p50 ms':>9}{'p95 ms':>9}{'p95 x base':>12}")
    for backend in args.backends.split(","):
        run(backend, sizes, args.requests)


if __name__ == "__main__":
    main()
