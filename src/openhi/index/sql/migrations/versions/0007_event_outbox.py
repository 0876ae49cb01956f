"""The event outbox of ``openhi.events``: events, the publication counter, delivery cursors per sink.

Hand-written and self-contained like 0001-0006; the tables are those of ``schema.py`` (``events``,
``event_sequence``, ``event_cursors``), read and written by ``openhi.index.sql.events``. ``events.id`` is the
append order (BIGSERIAL on PostgreSQL, the rowid on SQLite; gaps are harmless); ``events.sequence`` is the
published order, given from the one row of ``event_sequence`` (created here at 0) to committed events only. The
partial index finds unpublished events without scanning the published ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 32
EVENT_ID = 36
SINK = 200


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.String(EVENT_ID), nullable=False),
        sa.Column("detail_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", _time(), nullable=False),
        sa.Column("datastore_id", sa.String(ID), nullable=False),
        sa.Column("image_set_id", sa.String(ID), nullable=True),
        sa.Column("source_image_set_id", sa.String(ID), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("sequence", name="uq_events_sequence"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    unpublished = sa.text("sequence IS NULL")
    op.create_index("ix_events_unpublished", "events", ["id"], postgresql_where=unpublished, sqlite_where=unpublished)
    sequence = op.create_table(
        "event_sequence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_sequence"),
    )
    op.bulk_insert(sequence, [{"id": 1, "last": 0}])
    op.create_table(
        "event_cursors",
        sa.Column("sink", sa.String(SINK), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", _time(), nullable=True),
        sa.PrimaryKeyConstraint("sink", name="pk_event_cursors"),
    )


def downgrade() -> None:
    for table in ("event_cursors", "event_sequence", "events"):
        op.drop_table(table)
