"""The repositories of the SQL index, bound to the one connection of a unit of work.

Each repository is a thin translation of the port's verbs into SQLAlchemy Core statements on the
connection that ``SqlIndex.run`` opened; none of them commits, so everything a unit of work does stands
or falls together (cosmicpython ``unit_of_work.py``: repositories live inside the unit of work, the unit of
work owns the transaction; Orthanc ``StatelessDatabaseOperations``: the transaction is retried as a whole).
Writes that may hit a constraint run in a savepoint so that a ``ConflictError`` leaves the transaction
usable. Status changes are compare-and-set updates, which makes them safe across processes. Image sets
live in ``image_sets.py`` and import jobs in ``import_jobs.py``; this module holds data stores, tags and
the unit of work that binds them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import ConflictError
from openhi.index.port import DatastorePageKey
from openhi.index.sql import counters
from openhi.index.sql.catalog import SqlCatalogRepository
from openhi.index.sql.counters import SqlCounterRepository
from openhi.index.sql.datastore_keys import SqlDatastoreKeyRepository
from openhi.index.sql.events import SqlEventRepository
from openhi.index.sql.iam import SqlIamRepository
from openhi.index.sql.image_sets import SqlImageSetRepository
from openhi.index.sql.import_jobs import SqlImportJobRepository
from openhi.index.sql.schema import datastores
from openhi.index.sql.schema import tags as tag_rows
from openhi.index.sql.tiers import SqlStorageTierRepository
from openhi.metrics.usage import datastore_status_counter, difference

DATASTORE_LEVEL = ""  # image_set_id of a tag row that belongs to the data store itself


def _datastore(row: Row[Any]) -> Datastore:
    return Datastore(
        datastore_id=row.datastore_id,
        name=row.name,
        status=DatastoreStatus(row.status),
        lossless_storage_format=LosslessStorageFormat(row.lossless_storage_format),
        created_at=row.created_at,
        updated_at=row.updated_at,
        client_token=row.client_token,
        kms_key_arn=row.kms_key_arn,
        lambda_authorizer_arn=row.lambda_authorizer_arn,
    )


@dataclass(frozen=True)
class SqlDatastoreRepository:
    """``DatastoreRepository`` on one connection."""

    conn: Connection

    def add(self, datastore: Datastore) -> None:
        values = {
            "datastore_id": datastore.datastore_id,
            "name": datastore.name,
            "status": datastore.status.value,
            "lossless_storage_format": datastore.lossless_storage_format.value,
            "kms_key_arn": datastore.kms_key_arn,
            "lambda_authorizer_arn": datastore.lambda_authorizer_arn,
            "client_token": datastore.client_token,
            "created_at": datastore.created_at,
            "updated_at": datastore.updated_at,
        }
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(datastores).values(values))
        except IntegrityError as exc:
            raise ConflictError(
                f"A data store with id {datastore.datastore_id} or with the same client token already exists"
            ) from exc
        status = {datastore_status_counter(datastore.status): 1}
        counters.apply(self.conn, datastore.datastore_id, datastore.datastore_id, status)

    def get(self, datastore_id: str) -> Datastore | None:
        row = self.conn.execute(select(datastores).where(datastores.c.datastore_id == datastore_id)).one_or_none()
        return None if row is None else _datastore(row)

    def get_by_client_token(self, client_token: str) -> Datastore | None:
        row = self.conn.execute(select(datastores).where(datastores.c.client_token == client_token)).one_or_none()
        return None if row is None else _datastore(row)

    def list_page(self, status: DatastoreStatus | None, after: DatastorePageKey | None, limit: int) -> list[Datastore]:
        query = select(datastores)
        if status is not None:
            query = query.where(datastores.c.status == status.value)
        if after is not None:
            query = query.where(
                or_(
                    datastores.c.created_at < after.created_at,
                    and_(
                        datastores.c.created_at == after.created_at,
                        datastores.c.datastore_id < after.datastore_id,
                    ),
                )
            )
        query = query.order_by(datastores.c.created_at.desc(), datastores.c.datastore_id.desc()).limit(limit)
        return [_datastore(row) for row in self.conn.execute(query)]

    def count_in(self, statuses: Sequence[DatastoreStatus]) -> int:
        if not statuses:
            return 0
        query = (
            select(func.count())
            .select_from(datastores)
            .where(datastores.c.status.in_([status.value for status in statuses]))
        )
        return int(self.conn.execute(query).scalar_one())

    def ids_in(self, status: DatastoreStatus) -> list[str]:
        query = (
            select(datastores.c.datastore_id)
            .where(datastores.c.status == status.value)
            .order_by(datastores.c.datastore_id)
        )
        return [str(value) for value in self.conn.execute(query).scalars()]

    def transition(self, datastore_id: str, expected: DatastoreStatus, new: DatastoreStatus, at: datetime) -> bool:
        result = self.conn.execute(
            update(datastores)
            .where(datastores.c.datastore_id == datastore_id, datastores.c.status == expected.value)
            .values(status=new.value, updated_at=at)
        )
        if result.rowcount != 1:
            return False
        moved = difference({datastore_status_counter(expected): 1}, {datastore_status_counter(new): 1})
        counters.apply(self.conn, datastore_id, datastore_id, moved)
        return True


@dataclass(frozen=True)
class SqlTagRepository:
    """``TagRepository`` on one connection; ``None`` as image set id means the data store itself."""

    conn: Connection

    def get(self, datastore_id: str, image_set_id: str | None) -> dict[str, str]:
        query = (
            select(tag_rows.c.key, tag_rows.c.value)
            .where(tag_rows.c.datastore_id == datastore_id, tag_rows.c.image_set_id == _level(image_set_id))
            .order_by(tag_rows.c.key)
        )
        return {str(row.key): str(row.value) for row in self.conn.execute(query)}

    def put(self, datastore_id: str, image_set_id: str | None, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [
            {"datastore_id": datastore_id, "image_set_id": _level(image_set_id), "key": key, "value": value}
            for key, value in tags.items()
        ]
        keys = [tag_rows.c.datastore_id, tag_rows.c.image_set_id, tag_rows.c.key]
        # SqlIndex accepts only PostgreSQL and SQLite URLs; both spell the upsert the same way.
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        upsert = insert(tag_rows).values(rows)
        statement = upsert.on_conflict_do_update(index_elements=keys, set_={"value": upsert.excluded.value})
        try:
            with self.conn.begin_nested():
                self.conn.execute(statement)
        except IntegrityError as exc:
            raise ConflictError(f"Data store {datastore_id} is not in the index") from exc

    def remove(self, datastore_id: str, image_set_id: str | None, keys: Sequence[str]) -> None:
        if not keys:
            return
        self.conn.execute(
            delete(tag_rows).where(
                tag_rows.c.datastore_id == datastore_id,
                tag_rows.c.image_set_id == _level(image_set_id),
                tag_rows.c.key.in_(list(keys)),
            )
        )

    def remove_all_of_datastore(self, datastore_id: str) -> None:
        self.conn.execute(delete(tag_rows).where(tag_rows.c.datastore_id == datastore_id))


def _level(image_set_id: str | None) -> str:
    return DATASTORE_LEVEL if image_set_id is None else image_set_id


@dataclass(frozen=True)
class SqlUnitOfWork:
    """The repositories of one transaction (satisfies the port's ``UnitOfWork``)."""

    datastores: SqlDatastoreRepository
    image_sets: SqlImageSetRepository
    tags: SqlTagRepository
    import_jobs: SqlImportJobRepository
    catalog: SqlCatalogRepository
    iam: SqlIamRepository
    counters: SqlCounterRepository
    tiers: SqlStorageTierRepository
    events: SqlEventRepository
    datastore_keys: SqlDatastoreKeyRepository

    @classmethod
    def on(cls, conn: Connection) -> SqlUnitOfWork:
        """Repositories bound to ``conn`` (which already has a transaction open)."""
        return cls(
            SqlDatastoreRepository(conn),
            SqlImageSetRepository(conn),
            SqlTagRepository(conn),
            SqlImportJobRepository(conn),
            SqlCatalogRepository(conn),
            SqlIamRepository(conn),
            SqlCounterRepository(conn),
            SqlStorageTierRepository(conn),
            SqlEventRepository(conn),
            SqlDatastoreKeyRepository(conn),
        )
