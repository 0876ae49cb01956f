"""Alembic environment of the index: runs on the connection that ``SqlIndex.migrate`` hands in.

There is no alembic.ini and no URL here: the adapter builds an ``alembic.config.Config`` pointing at this
directory, opens the connection itself (with its dialect settings, and on PostgreSQL an advisory lock so
several server processes can start at once) and passes it as ``config.attributes["connection"]``. SQLite
migrations run in batch mode, since SQLite can only change most of a table by copying it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openhi.index.sql.schema import metadata


def run_migrations_online() -> None:
    """Migrate through the connection given by the caller."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("index migrations run through SqlIndex.migrate(), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use SqlIndex.migrate()")
run_migrations_online()
