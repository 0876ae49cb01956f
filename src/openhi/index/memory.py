"""``MemoryIndex``: the index port in process memory, the fake for unit tests and the contract reference.

Every port ships an in-memory adapter (Orthanc ``MemoryStorageArea``, litestar ``MemoryStore``, and for a
unit of work cosmicpython's ``FakeUnitOfWork``). Every unit of work runs under one lock on the live state
after taking a deep copy: when the work raises, the copy is put back, so a failed unit of work leaves
nothing behind, exactly as a rolled-back transaction (Orthanc ``StatelessDatabaseOperations``). Units of
work are therefore serial, never retried, and must not call ``run`` again from inside (the lock is not
re-entrant). Constraints mirror the SQL schema: a client token is unique, times are aware and read back in
UTC, and tags belong to a data store that exists. The state lives in ``memory_state.py``; image sets,
import jobs and the QIDO-RS catalog have their repositories in ``memory_image_sets.py``,
``memory_import_jobs.py``, ``memory_catalog.py`` and (IAM principals) ``memory_iam.py``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.errors import ConflictError
from openhi.index import memory_counters
from openhi.index.memory_catalog import MemoryCatalogRepository
from openhi.index.memory_counters import MemoryCounterRepository
from openhi.index.memory_datastore_keys import MemoryDatastoreKeyRepository
from openhi.index.memory_events import MemoryEventRepository
from openhi.index.memory_iam import MemoryIamRepository
from openhi.index.memory_image_sets import MemoryImageSetRepository
from openhi.index.memory_import_jobs import MemoryImportJobRepository
from openhi.index.memory_state import MemoryImageSet, MemoryState, utc
from openhi.index.memory_tiers import MemoryStorageTierRepository
from openhi.index.port import DatastorePageKey, Index, UnitOfWork
from openhi.metrics.usage import datastore_status_counter, difference

__all__ = ["MemoryImageSet", "MemoryIndex", "MemoryState", "MemoryUnitOfWork"]

T = TypeVar("T")


def _level(image_set_id: str | None) -> str:
    return "" if image_set_id is None else image_set_id


@dataclass(frozen=True)
class MemoryDatastoreRepository:
    """``DatastoreRepository`` over the state."""

    state: MemoryState

    def add(self, datastore: Datastore) -> None:
        if datastore.datastore_id in self.state.datastores or any(
            existing.client_token == datastore.client_token for existing in self.state.datastores.values()
        ):
            raise ConflictError(
                f"A data store with id {datastore.datastore_id} or with the same client token already exists"
            )
        self.state.datastores[datastore.datastore_id] = replace(
            datastore, created_at=utc(datastore.created_at), updated_at=utc(datastore.updated_at)
        )
        memory_counters.apply(self.state, datastore.datastore_id, {datastore_status_counter(datastore.status): 1})

    def get(self, datastore_id: str) -> Datastore | None:
        return self.state.datastores.get(datastore_id)

    def get_by_client_token(self, client_token: str) -> Datastore | None:
        return next((d for d in self.state.datastores.values() if d.client_token == client_token), None)

    def list_page(self, status: DatastoreStatus | None, after: DatastorePageKey | None, limit: int) -> list[Datastore]:
        rows = [d for d in self.state.datastores.values() if status is None or d.status == status]
        if after is not None:
            position = (after.created_at, after.datastore_id)
            rows = [d for d in rows if (d.created_at, d.datastore_id) < position]
        rows.sort(key=lambda d: (d.created_at, d.datastore_id), reverse=True)
        return rows[: max(limit, 0)]

    def count_in(self, statuses: Sequence[DatastoreStatus]) -> int:
        wanted = set(statuses)
        return sum(1 for d in self.state.datastores.values() if d.status in wanted)

    def ids_in(self, status: DatastoreStatus) -> list[str]:
        return sorted(d.datastore_id for d in self.state.datastores.values() if d.status == status)

    def transition(self, datastore_id: str, expected: DatastoreStatus, new: DatastoreStatus, at: datetime) -> bool:
        current = self.state.datastores.get(datastore_id)
        if current is None or current.status != expected:
            return False
        self.state.datastores[datastore_id] = current.with_status(new, utc(at))
        moved = difference({datastore_status_counter(expected): 1}, {datastore_status_counter(new): 1})
        memory_counters.apply(self.state, datastore_id, moved)
        return True


@dataclass(frozen=True)
class MemoryTagRepository:
    """``TagRepository`` over the state."""

    state: MemoryState

    def get(self, datastore_id: str, image_set_id: str | None) -> dict[str, str]:
        return dict(sorted(self.state.tags.get((datastore_id, _level(image_set_id)), {}).items()))

    def put(self, datastore_id: str, image_set_id: str | None, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        if datastore_id not in self.state.datastores:
            raise ConflictError(f"Data store {datastore_id} is not in the index")
        self.state.tags.setdefault((datastore_id, _level(image_set_id)), {}).update(tags)

    def remove(self, datastore_id: str, image_set_id: str | None, keys: Sequence[str]) -> None:
        resource = (datastore_id, _level(image_set_id))
        current = self.state.tags.get(resource)
        if current is None:
            return
        for key in keys:
            current.pop(key, None)
        if not current:
            del self.state.tags[resource]

    def remove_all_of_datastore(self, datastore_id: str) -> None:
        for resource in [r for r in self.state.tags if r[0] == datastore_id]:
            del self.state.tags[resource]


@dataclass(frozen=True)
class MemoryUnitOfWork:
    """The repositories of one unit of work over the state."""

    datastores: MemoryDatastoreRepository
    image_sets: MemoryImageSetRepository
    tags: MemoryTagRepository
    import_jobs: MemoryImportJobRepository
    catalog: MemoryCatalogRepository
    iam: MemoryIamRepository
    counters: MemoryCounterRepository
    tiers: MemoryStorageTierRepository
    events: MemoryEventRepository
    datastore_keys: MemoryDatastoreKeyRepository

    @classmethod
    def on(cls, state: MemoryState) -> MemoryUnitOfWork:
        """Repositories over ``state``."""
        return cls(
            MemoryDatastoreRepository(state),
            MemoryImageSetRepository(state),
            MemoryTagRepository(state),
            MemoryImportJobRepository(state),
            MemoryCatalogRepository(state),
            MemoryIamRepository(state),
            MemoryCounterRepository(state),
            MemoryStorageTierRepository(state),
            MemoryEventRepository(state),
            MemoryDatastoreKeyRepository(state),
        )


class MemoryIndex:
    """The index in memory; thread-safe, units of work run one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = MemoryState()

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        """Run ``work``; if it raises, restore the state as it was before and re-raise."""
        with self._lock:
            snapshot = copy.deepcopy(self.state)
            try:
                return work(MemoryUnitOfWork.on(self.state))
            except BaseException:
                self._restore(snapshot)
                raise

    def _restore(self, snapshot: MemoryState) -> None:
        # Restore in place, so repositories a work function leaked keep pointing at live state.
        for table in fields(MemoryState):
            setattr(self.state, table.name, getattr(snapshot, table.name))

    def check(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        """Nothing to release."""


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port
    _conforms: Index = MemoryIndex()
