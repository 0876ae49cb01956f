"""The QIDO-RS catalog: study, series and instance rows of primary image sets, one index per filter and sort.

Hand-written and self-contained like 0001-0003. A migration cannot read metadata documents (they are blobs),
so the tables start empty; ``catalog_image_sets`` records which version of each image set the rows were
derived from, and the server's catalog backfill (``openhi.dicomweb.qido.backfill``) fills in every primary,
not deleted image set that has none.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STUDY_TEXT = (
    "patient_name",
    "patient_name_norm",
    "patient_name_words",
    "patient_id",
    "patient_birth_date",
    "patient_birth_time",
    "patient_sex",
    "study_date",
    "study_time",
    "accession_number",
    "study_id",
    "study_description",
    "referring_physician_name",
    "referring_physician_name_norm",
    "referring_physician_name_words",
    "modalities",
)
STUDY_INDEXES = (
    ("updated_at", "study_uid"),
    ("patient_id",),
    ("patient_name_norm",),
    ("accession_number",),
    ("study_date",),
    ("study_id",),
    ("patient_birth_date",),
    ("referring_physician_name_norm",),
)


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _datastore(table: str) -> list[sa.Column[str] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("datastore_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["datastore_id"],
            ["datastores.datastore_id"],
            name=f"fk_{table}_datastore_id_datastores",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "catalog_image_sets",
        *_datastore("catalog_image_sets"),
        sa.Column("image_set_id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", name="pk_catalog_image_sets"),
    )
    op.create_table(
        "catalog_series",
        *_datastore("catalog_series"),
        sa.Column("image_set_id", sa.String(32), nullable=False),
        sa.Column("series_uid", sa.Text(), nullable=False),
        sa.Column("study_uid", sa.Text(), nullable=False),
        sa.Column("modality", sa.Text(), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.Text(), nullable=True),
        sa.Column("pps_start_date", sa.Text(), nullable=True),
        sa.Column("pps_start_time", sa.Text(), nullable=True),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("study_attributes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", "series_uid", name="pk_catalog_series"),
    )
    op.create_index(
        "ix_catalog_series_datastore_id_study_uid_series_number",
        "catalog_series",
        ["datastore_id", "study_uid", "series_number"],
    )
    op.create_table(
        "catalog_instances",
        *_datastore("catalog_instances"),
        sa.Column("image_set_id", sa.String(32), nullable=False),
        sa.Column("series_uid", sa.Text(), nullable=False),
        sa.Column("sop_uid", sa.Text(), nullable=False),
        sa.Column("study_uid", sa.Text(), nullable=False),
        sa.Column("sop_class_uid", sa.Text(), nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("warning_reasons", sa.Text(), nullable=True),
        sa.Column("modality", sa.Text(), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", "series_uid", "sop_uid", name="pk_catalog_instances"),
    )
    op.create_index(
        "ix_catalog_instances_position",
        "catalog_instances",
        ["datastore_id", "study_uid", "series_uid", "instance_number"],
    )
    op.create_table(
        "catalog_studies",
        *_datastore("catalog_studies"),
        sa.Column("study_uid", sa.Text(), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=True) for name in STUDY_TEXT),
        sa.Column("series_count", sa.Integer(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "study_uid", name="pk_catalog_studies"),
    )
    for columns in STUDY_INDEXES:
        op.create_index(
            f"ix_catalog_studies_datastore_id_{'_'.join(columns)}", "catalog_studies", ["datastore_id", *columns]
        )


def downgrade() -> None:
    for table in ("catalog_studies", "catalog_instances", "catalog_series", "catalog_image_sets"):
        op.drop_table(table)
