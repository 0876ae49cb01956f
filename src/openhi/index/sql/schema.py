"""The index tables as SQLAlchemy Core metadata, shared by the SQLite and PostgreSQL adapters.

This module is the adapter's picture of the schema that the Alembic migrations in ``migrations/`` build
(the migrations are hand-written and self-contained; ``tests/integration/test_sql_index.py`` checks that
both agree). Times are aware UTC datetimes everywhere: PostgreSQL stores them as ``timestamptz``; SQLite,
which has no time type, stores them as fixed-width ISO 8601 text in UTC with microseconds
(``2024-05-01 12:30:00.000001+00:00``), so that text order is time order and keyset pagination works on
both. A tag row with ``image_set_id = ''`` belongs to the data store itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

# Naming convention so constraint names are stable across dialects (and usable in migrations).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LENGTH = 32
SQLITE_TIME_LENGTH = 32  # len("2024-05-01 12:30:00.000001+00:00")


def format_sqlite_time(value: datetime) -> str:
    """The SQLite text form of an aware datetime: UTC, fixed width, microseconds always present."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the index stores aware datetimes only, got naive {value!r}")
    return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; read back as an aware UTC datetime on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_TIME_LENGTH))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format_sqlite_time(value)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"the index stores aware datetimes only, got naive {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
        elif isinstance(value, datetime):
            parsed = value
        else:
            raise TypeError(f"unexpected stored time {value!r}")
        if parsed.tzinfo is None:  # written by something else than this type: documented as UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


def _id(name: str, *, primary_key: bool = False) -> Column[str]:
    return Column(name, String(ID_LENGTH), primary_key=primary_key, nullable=False)


datastores = Table(
    "datastores",
    metadata,
    _id("datastore_id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("lossless_storage_format", String(32), nullable=False),
    Column("kms_key_arn", Text, nullable=True),
    Column("lambda_authorizer_arn", Text, nullable=True),
    Column("client_token", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("client_token"),
    Index(None, "created_at", "datastore_id"),
    Index(None, "status"),
)


def _datastore_ref() -> Column[str]:
    """The owning data store; rows go with it (ON DELETE CASCADE)."""
    return Column(
        "datastore_id",
        String(ID_LENGTH),
        ForeignKey("datastores.datastore_id", ondelete="CASCADE"),
        nullable=False,
    )


# Image sets: only what tags and data store deletion need today; DICOM import extends this table.
image_sets = Table(
    "image_sets",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("version_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # ACTIVE | LOCKED | DELETED
    Column("workflow_status", String(32), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id"),
)

# Tags of a data store (image_set_id = '') or of one of its image sets.
tags = Table(
    "tags",
    metadata,
    _datastore_ref(),
    Column("image_set_id", String(ID_LENGTH), nullable=False, server_default=""),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "key"),
)
