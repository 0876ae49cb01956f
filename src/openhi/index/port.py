"""The index port: repositories reached through one unit of work.

Services never hold a connection: they hand a function to ``Index.run``, which opens a transaction,
passes a ``UnitOfWork`` to it, commits, and retries the whole function a bounded number of times when the
database reports a serialization failure or a lock timeout (learned from Orthanc's
``StatelessDatabaseOperations`` and cosmicpython's ``unit_of_work.py``). Because the function may run more
than once it must not have side effects outside the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from openhi.datastores.model import Datastore, DatastoreStatus

T = TypeVar("T")


@dataclass(frozen=True)
class DatastorePageKey:
    """Keyset position for listing data stores, newest first: (created_at, datastore_id) of the last row."""

    created_at: datetime
    datastore_id: str


class DatastoreRepository(Protocol):
    """Data store rows."""

    def add(self, datastore: Datastore) -> None:
        """Insert a new data store. Raises ``ConflictError`` if its client token is already taken."""
        ...

    def get(self, datastore_id: str) -> Datastore | None:
        """The data store, whatever its status, or None."""
        ...

    def get_by_client_token(self, client_token: str) -> Datastore | None:
        """The data store created with this idempotency token, or None."""
        ...

    def list_page(
        self, status: DatastoreStatus | None, after: DatastorePageKey | None, limit: int
    ) -> list[Datastore]:
        """Up to ``limit`` data stores, newest first (created_at DESC, id DESC), strictly after ``after``."""
        ...

    def count_in(self, statuses: Sequence[DatastoreStatus]) -> int:
        """How many data stores are in any of ``statuses``."""
        ...

    def ids_in(self, status: DatastoreStatus) -> list[str]:
        """Ids of every data store in ``status`` (for the lifecycle sweep)."""
        ...

    def transition(
        self, datastore_id: str, expected: DatastoreStatus, new: DatastoreStatus, at: datetime
    ) -> bool:
        """Compare-and-set the status; True when this call moved it (safe across processes)."""
        ...


class ImageSetRepository(Protocol):
    """Image set rows (the full model arrives with DICOM import; tags only need existence here)."""

    def exists(self, datastore_id: str, image_set_id: str) -> bool:
        """True when the image set exists in the data store and is not deleted."""
        ...

    def count_in_datastore(self, datastore_id: str) -> int:
        """Image sets of the data store that are not deleted."""
        ...


class TagRepository(Protocol):
    """Tags per resource; a resource is (datastore_id, image_set_id or None)."""

    def get(self, datastore_id: str, image_set_id: str | None) -> dict[str, str]:
        """All tags of the resource (empty when none)."""
        ...

    def put(self, datastore_id: str, image_set_id: str | None, tags: Mapping[str, str]) -> None:
        """Add or overwrite the given tags; others stay."""
        ...

    def remove(self, datastore_id: str, image_set_id: str | None, keys: Sequence[str]) -> None:
        """Remove the named tags; absent keys are ignored."""
        ...

    def remove_all_of_datastore(self, datastore_id: str) -> None:
        """Remove the tags of the data store and of every image set in it."""
        ...


class UnitOfWork(Protocol):
    """The repositories of one transaction."""

    @property
    def datastores(self) -> DatastoreRepository: ...

    @property
    def image_sets(self) -> ImageSetRepository: ...

    @property
    def tags(self) -> TagRepository: ...


class Index(Protocol):
    """Entry point of the index port."""

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        """Run ``work`` in one transaction, commit, retry on serialization failures; return its result."""
        ...

    def check(self) -> None:
        """Raise ``UnavailableError`` when the database cannot be reached (readiness probe)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
