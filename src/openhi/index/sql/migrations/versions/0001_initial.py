"""Initial index schema: data stores, image sets (minimal) and tags.

Hand-written and self-contained (it does not import ``schema.py``, which describes the latest schema, not
this revision's). Times are ``timestamptz`` on PostgreSQL and fixed-width UTC ISO 8601 text on SQLite.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datastores",
        sa.Column("datastore_id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("lossless_storage_format", sa.String(32), nullable=False),
        sa.Column("kms_key_arn", sa.Text(), nullable=True),
        sa.Column("lambda_authorizer_arn", sa.Text(), nullable=True),
        sa.Column("client_token", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", name="pk_datastores"),
        sa.UniqueConstraint("client_token", name="uq_datastores_client_token"),
    )
    op.create_index("ix_datastores_created_at_datastore_id", "datastores", ["created_at", "datastore_id"])
    op.create_index("ix_datastores_status", "datastores", ["status"])
    op.create_table(
        "image_sets",
        sa.Column("datastore_id", sa.String(32), nullable=False),
        sa.Column("image_set_id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("workflow_status", sa.String(32), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", name="pk_image_sets"),
        sa.ForeignKeyConstraint(
            ["datastore_id"],
            ["datastores.datastore_id"],
            name="fk_image_sets_datastore_id_datastores",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "tags",
        sa.Column("datastore_id", sa.String(32), nullable=False),
        sa.Column("image_set_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", "key", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["datastore_id"],
            ["datastores.datastore_id"],
            name="fk_tags_datastore_id_datastores",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("tags")
    op.drop_table("image_sets")
    op.drop_index("ix_datastores_status", table_name="datastores")
    op.drop_index("ix_datastores_created_at_datastore_id", table_name="datastores")
    op.drop_table("datastores")
