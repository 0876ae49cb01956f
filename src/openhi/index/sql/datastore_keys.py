"""``DatastoreKeyRepository`` on SQL: the ``datastore_keys`` table of migration 0009 (encryption at rest).

``add`` is an insert that does nothing when the version exists (ON CONFLICT DO NOTHING, spelled the same on
PostgreSQL and SQLite), so two processes provisioning or rotating the same data store at once end with one key per
version and each learns whether it won. ``rewrap`` is a compare-and-set on the wrapping key id. Inserts run in a
savepoint so that a data store missing from the index becomes a ``ConflictError`` and leaves the unit of work usable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from openhi.crypto.model import StoredDataKey, WrappingKind
from openhi.errors import ConflictError
from openhi.index.sql.schema import datastore_keys as rows


def _key(row: Row[Any]) -> StoredDataKey:
    return StoredDataKey(
        datastore_id=row.datastore_id,
        version=int(row.version),
        wrapped=bytes(row.wrapped),
        kind=WrappingKind(row.wrapping_kind),
        wrapping_key_id=row.wrapping_key_id,
        created_at=row.created_at,
        legacy_plaintext=bool(row.legacy_plaintext),
    )


@dataclass(frozen=True)
class SqlDatastoreKeyRepository:
    """``DatastoreKeyRepository`` on one connection."""

    conn: Connection

    def add(self, key: StoredDataKey) -> bool:
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(rows)
            .values(
                datastore_id=key.datastore_id,
                version=key.version,
                wrapped=key.wrapped,
                wrapping_kind=key.kind.value,
                wrapping_key_id=key.wrapping_key_id,
                created_at=key.created_at,
                legacy_plaintext=key.legacy_plaintext,
            )
            .on_conflict_do_nothing(index_elements=[rows.c.datastore_id, rows.c.version])
            .returning(rows.c.version)  # a row back: inserted (psycopg reports no rowcount for this statement)
        )
        try:
            with self.conn.begin_nested():
                return self.conn.execute(statement).first() is not None
        except IntegrityError as exc:
            raise ConflictError(f"Data store {key.datastore_id} is not in the index") from exc

    def get(self, datastore_id: str, version: int) -> StoredDataKey | None:
        query = select(rows).where(rows.c.datastore_id == datastore_id, rows.c.version == version)
        row = self.conn.execute(query).first()
        return _key(row) if row is not None else None

    def current(self, datastore_id: str) -> StoredDataKey | None:
        query = select(rows).where(rows.c.datastore_id == datastore_id).order_by(rows.c.version.desc()).limit(1)
        row = self.conn.execute(query).first()
        return _key(row) if row is not None else None

    def list_of(self, datastore_id: str) -> list[StoredDataKey]:
        query = select(rows).where(rows.c.datastore_id == datastore_id).order_by(rows.c.version)
        return [_key(row) for row in self.conn.execute(query)]

    def list_wrapped(self, kind: WrappingKind, other_than: str, limit: int) -> list[StoredDataKey]:
        query = (
            select(rows)
            .where(rows.c.wrapping_kind == kind.value, rows.c.wrapping_key_id != other_than)
            .order_by(rows.c.datastore_id, rows.c.version)
            .limit(max(limit, 0))
        )
        return [_key(row) for row in self.conn.execute(query)]

    def rewrap(self, key: StoredDataKey, expected_wrapping_key_id: str) -> bool:
        statement = (
            update(rows)
            .where(
                rows.c.datastore_id == key.datastore_id,
                rows.c.version == key.version,
                rows.c.wrapping_key_id == expected_wrapping_key_id,
            )
            .values(wrapped=key.wrapped, wrapping_key_id=key.wrapping_key_id)
        )
        return self.conn.execute(statement).rowcount == 1

    def remove_all_of_datastore(self, datastore_id: str) -> int:
        return self.conn.execute(delete(rows).where(rows.c.datastore_id == datastore_id)).rowcount
