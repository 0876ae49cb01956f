"""PostgreSQL: code-point-ordered indexes for the QIDO-RS study filters that take wildcards.

A wildcard with a literal prefix (``PatientName=DOE*``, guide 2235-2260) is a range on the column only when text
is compared code point by code point. SQLite does that with the indexes of 0004; a PostgreSQL database collation
(e.g. en_US.UTF-8) does not, so there the range is expressed with ``COLLATE "C"`` and needs indexes built in that
order. SQLite needs nothing: this revision is a no-op there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX_COLUMNS = (
    "patient_id",
    "patient_name_norm",
    "accession_number",
    "study_id",
    "referring_physician_name_norm",
    "study_description",
)


def upgrade() -> None:
    """One ``(datastore_id, column COLLATE "C")`` index per column, PostgreSQL only."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in PREFIX_COLUMNS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_catalog_studies_{column}_c "
            f'ON catalog_studies (datastore_id, {column} COLLATE "C")'
        )


def downgrade() -> None:
    """Drop the indexes again."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in PREFIX_COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_catalog_studies_{column}_c")
