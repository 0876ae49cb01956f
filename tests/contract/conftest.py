"""Fixtures of the index contract suites: one index per adapter (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.index_rows import insert_image_set as insert_sql_image_set

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.ids import new_id
from openhi.imagesets.model import ImageSetState
from openhi.index.memory import MemoryImageSet, MemoryIndex
from openhi.index.port import Index
from openhi.index.sql.adapter import SqlIndex

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)


@dataclass
class Backend:
    """An index under test plus a way to put a bare image set row in it, bypassing the port."""

    index: Index
    insert_image_set: Callable[[str, str, str], None]


def _memory_backend() -> Backend:
    index = MemoryIndex()

    def insert_image_set(datastore_id: str, image_set_id: str, state: str) -> None:
        index.state.image_sets[(datastore_id, image_set_id)] = MemoryImageSet(
            state=ImageSetState(state), created_at=T0, updated_at=T0
        )

    return Backend(index, insert_image_set)


def _sql_backend(url: str) -> Backend:
    index = SqlIndex.open(url)

    def insert_image_set(datastore_id: str, image_set_id: str, state: str) -> None:
        insert_sql_image_set(index, datastore_id, image_set_id, state)

    return Backend(index, insert_image_set)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        made = _memory_backend()
    elif request.param == "sqlite":
        made = _sql_backend(f"sqlite:///{tmp_path / 'index.db'}")
    else:
        made = _sql_backend(request.getfixturevalue("postgres_url"))
    yield made
    made.index.close()


@pytest.fixture
def index(backend: Backend) -> Index:
    return backend.index


@pytest.fixture
def new_datastore(index: Index) -> Callable[[], str]:
    """Adds an ACTIVE data store to the index and returns its id."""

    def add() -> str:
        datastore = Datastore(
            datastore_id=new_id(),
            name="store",
            status=DatastoreStatus.ACTIVE,
            lossless_storage_format=LosslessStorageFormat.HTJ2K,
            created_at=T0,
            updated_at=T0,
            client_token=new_id(),
        )
        index.run(lambda uow: uow.datastores.add(datastore))
        return datastore.datastore_id

    return add
