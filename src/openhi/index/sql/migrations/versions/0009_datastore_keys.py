"""Encryption at rest: the wrapped data store keys (``openhi.crypto``, docs/encryption.md).

Hand-written and self-contained like 0001-0006; the table is ``schema.datastore_keys``, read and written by
``openhi.index.sql.datastore_keys``. One row per version of a data store's key, only ever wrapped (by the master key
or by the customer key named by the data store's kmsKeyArn). The table starts empty: data stores provisioned
before this migration get a key on their first write (marked ``legacy_plaintext``: they may hold objects stored in
the clear, which stay readable).

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datastore_keys",
        sa.Column("datastore_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("wrapping_kind", sa.String(16), nullable=False),
        sa.Column("wrapping_key_id", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("legacy_plaintext", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["datastore_id"],
            ["datastores.datastore_id"],
            name="fk_datastore_keys_datastore_id_datastores",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("datastore_id", "version", name="pk_datastore_keys"),
    )


def downgrade() -> None:
    op.drop_table("datastore_keys")
