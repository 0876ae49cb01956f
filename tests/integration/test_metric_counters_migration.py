"""Migration 0008 fills the counters of the resource metrics from an index that already holds data.

An archive upgraded to 0008 has rows but no counters: the migration computes them from the rows. The test writes
data through the port at head, notes the counters the repositories maintained, goes back to 0007 (the counter
tables are dropped, the rows stay), migrates up again and expects the same counters from the backfill, on SQLite
and PostgreSQL. Storage tiers are compared as a total: the backfill counts every image set's bytes in
FREQUENT_ACCESS (tiers are recorded from 0010 on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import create_engine, inspect
from tests.integration.test_sql_index import migrate_to
from tests.support.counter_workload import T0, random_workload, summary

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.ids import new_id
from openhi.index.sql.adapter import SqlIndex, normalize_url
from openhi.metrics.usage import ARCHIVE_INSTANT_ACCESS, FREQUENT_ACCESS, DatastoreUsage


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.db'}"
    return cast(str, request.getfixturevalue("postgres_url"))


def _add_datastore(index: SqlIndex, status: DatastoreStatus) -> str:
    datastore = Datastore(
        datastore_id=new_id(),
        name="store",
        status=status,
        lossless_storage_format=LosslessStorageFormat.HTJ2K,
        created_at=T0,
        updated_at=T0,
        client_token=new_id(),
    )
    index.run(lambda uow: uow.datastores.add(datastore))
    return datastore.datastore_id


def _tier_total(found: DatastoreUsage) -> dict[str, Any]:
    counted = summary(found)
    counted["bytes"] = found.storage_bytes[FREQUENT_ACCESS] + found.storage_bytes[ARCHIVE_INSTANT_ACCESS]
    return counted


def _totals(index: SqlIndex) -> dict[str, dict[str, Any]]:
    return {u.datastore_id: _tier_total(u) for u in index.run(lambda uow: uow.counters.totals(), readonly=True)}


def test_the_backfill_of_0008_equals_the_maintained_counters(url: str) -> None:
    index = SqlIndex.open(url)
    try:
        busy, idle = _add_datastore(index, DatastoreStatus.ACTIVE), _add_datastore(index, DatastoreStatus.DELETING)
        random_workload(index, busy, seed=3, steps=30)
        maintained = _totals(index)
        assert maintained[busy]["image_sets"] > 0
        assert maintained[idle]["status"] == "DELETING"

        migrate_to(url, "0007")
        engine = create_engine(normalize_url(url))
        try:
            with engine.connect() as conn:
                assert "index_counters" not in inspect(conn).get_table_names()
        finally:
            engine.dispose()

        index.migrate()
        assert _totals(index) == maintained
        backfilled = {u.datastore_id: u for u in index.run(lambda uow: uow.counters.totals(), readonly=True)}
        assert backfilled[busy].storage_bytes[ARCHIVE_INSTANT_ACCESS] == 0
    finally:
        index.close()
