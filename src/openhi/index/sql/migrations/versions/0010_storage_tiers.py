"""Storage tiers of image sets: the tier, the last access and when the tier last changed.

Hand-written and self-contained like 0001-0009; the columns are those of ``schema.py`` (``image_sets``), written
only by ``openhi.index.sql.tiers`` (guide 23009-23052, ``openhi.tiers``). Existing image sets start in Frequent
Access and never accessed, so they become idle ``archive_after_days`` after their creation.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_image_sets_storage_tier_last_accessed_at"


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("image_sets") as table:
        table.add_column(sa.Column("storage_tier", sa.String(32), nullable=False, server_default="FREQUENT_ACCESS"))
        table.add_column(sa.Column("last_accessed_at", _time(), nullable=True))
        table.add_column(sa.Column("tier_changed_at", _time(), nullable=True))
    op.create_index(INDEX, "image_sets", ["storage_tier", "last_accessed_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="image_sets")
    with op.batch_alter_table("image_sets") as table:
        table.drop_column("tier_changed_at")
        table.drop_column("last_accessed_at")
        table.drop_column("storage_tier")
