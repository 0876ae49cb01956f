"""Counters of the resource metrics (``openhi.metrics.usage``): ``index_counters`` and ``image_set_usage``.

Hand-written and self-contained like 0001-0007; the tables are those of ``schema.py``, read and written by
``openhi.index.sql.counters``. The index already holds data when this runs, so the counters are filled from the
rows here (the statements of ``SqlCounterRepository.recount``, spelled on lightweight tables so that this file
does not depend on the application's code): each image set's frame bytes in FREQUENT_ACCESS, then per data store
its status, its image sets (all, primary, under 5 MB), its bytes per tier, and its catalog studies, series and
instances. Each counter is written to slot 0; later changes add to the slot of the image set they are about.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 32
NAME = 64
TIER = 32
SMALL_IMAGE_SET_BYTES = 5 * 1024 * 1024
FREQUENT_ACCESS = "FREQUENT_ACCESS"

_datastores = sa.table("datastores", sa.column("datastore_id"), sa.column("status"))
_image_sets = sa.table(
    "image_sets", sa.column("datastore_id"), sa.column("image_set_id"), sa.column("state"), sa.column("is_primary")
)
_frames = sa.table("image_set_frames", sa.column("datastore_id"), sa.column("image_set_id"), sa.column("size"))
_usage = sa.table(
    "image_set_usage", sa.column("datastore_id"), sa.column("image_set_id"), sa.column("size"), sa.column("tier")
)
_counters = sa.table(
    "index_counters", sa.column("datastore_id"), sa.column("name"), sa.column("slot"), sa.column("value")
)
_catalog = {
    "dicom_studies": sa.table("catalog_studies", sa.column("datastore_id")),
    "dicom_series": sa.table("catalog_series", sa.column("datastore_id")),
    "dicom_instances": sa.table("catalog_instances", sa.column("datastore_id")),
}
_COUNTER_COLUMNS = ["datastore_id", "name", "slot", "value"]


def _datastore(table: str) -> list[sa.Column[str] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("datastore_id", sa.String(ID), nullable=False),
        sa.ForeignKeyConstraint(
            ["datastore_id"],
            ["datastores.datastore_id"],
            name=f"fk_{table}_datastore_id_datastores",
            ondelete="CASCADE",
        ),
    ]


def _counts(select: Any) -> None:
    op.get_bind().execute(sa.insert(_counters).from_select(_COUNTER_COLUMNS, select))


def _backfill() -> None:
    frame_bytes = sa.func.coalesce(
        sa.select(sa.func.sum(_frames.c.size))
        .where(
            _frames.c.datastore_id == _image_sets.c.datastore_id, _frames.c.image_set_id == _image_sets.c.image_set_id
        )
        .scalar_subquery(),
        0,
    )
    op.get_bind().execute(
        sa.insert(_usage).from_select(
            ["datastore_id", "image_set_id", "size", "tier"],
            sa.select(_image_sets.c.datastore_id, _image_sets.c.image_set_id, frame_bytes, sa.literal(FREQUENT_ACCESS)),
        )
    )
    zero, count = sa.literal(0), sa.func.count()
    live = _image_sets.c.state != "DELETED"
    owner = _image_sets.c.datastore_id
    _counts(
        sa.select(
            _datastores.c.datastore_id, sa.literal("datastore_status.") + _datastores.c.status, zero, sa.literal(1)
        )
    )
    _counts(sa.select(owner, sa.literal("image_sets"), zero, count).where(live).group_by(owner))
    primary = _image_sets.c.is_primary.is_(sa.true())
    _counts(sa.select(owner, sa.literal("primary_image_sets"), zero, count).where(live, primary).group_by(owner))
    joined = _image_sets.join(
        _usage, sa.and_(_usage.c.datastore_id == owner, _usage.c.image_set_id == _image_sets.c.image_set_id)
    )
    small = _usage.c.size < SMALL_IMAGE_SET_BYTES
    _counts(
        sa.select(owner, sa.literal("small_image_sets"), zero, count)
        .select_from(joined)
        .where(live, small)
        .group_by(owner)
    )
    _counts(
        sa.select(owner, sa.literal("storage_bytes.") + _usage.c.tier, zero, sa.func.sum(_usage.c.size))
        .select_from(joined)
        .where(live)
        .group_by(owner, _usage.c.tier)
    )
    for name, table in _catalog.items():
        _counts(sa.select(table.c.datastore_id, sa.literal(name), zero, count).group_by(table.c.datastore_id))


def upgrade() -> None:
    op.create_table(
        "index_counters",
        *_datastore("index_counters"),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "name", "slot", name="pk_index_counters"),
    )
    op.create_table(
        "image_set_usage",
        *_datastore("image_set_usage"),
        sa.Column("image_set_id", sa.String(ID), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(TIER), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", name="pk_image_set_usage"),
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("image_set_usage")
    op.drop_table("index_counters")
