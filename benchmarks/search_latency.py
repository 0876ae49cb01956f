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

import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._sql_latency import T0, Benchmark, Figure, timed

from openhi.datastores.service import load_datastore
from openhi.imagesets.search import ImageSetSearch
from openhi.index.port import UnitOfWork
from openhi.index.sql.adapter import SqlIndex
from openhi.index.sql.schema import image_sets
from openhi.search.criteria import SearchQuery
from openhi.search.tokens import TokenCodec

DATASTORE = "b" * 32
FIRST_STUDY_DAY = date(2000, 1, 1)
STUDY_DAYS = 7300  # 20 years of study dates


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


def measure(index: SqlIndex, size: int, count: int) -> list[Figure]:
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


BENCHMARK = Benchmark(
    DATASTORE, image_sets, frozenset({"created_at", "updated_at"}), rows, measure, "rows", "image sets", "operation", 40
)


def main() -> None:
    BENCHMARK.main(__doc__, sizes="10000,100000,1000000", requests=200, through="ImageSetSearch")


if __name__ == "__main__":
    main()
