"""Image set search: summary columns (DICOMTags of SearchImageSets) and one index per filter and sort.

Hand-written and self-contained like 0001 and 0002. ``image_sets`` gains the summary of its latest version
(patient name, birth date, sex, study description and time, series modality and body part, instance count)
and ``study_datetime``, the sortable ``YYYYMMDDHHMMSS.ffffff`` of Study Date + Study Time. Rows that exist
already get ``study_datetime`` from their Study Date (time 00:00: their Study Time was not kept); their
other summary columns stay empty until their next version. Frames and versions get an index to find
whether another image set shares a frame or a metadata document (DeleteImageSet).

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMMARY_COLUMNS = (
    "patient_name",
    "patient_birth_date",
    "patient_sex",
    "study_description",
    "study_time",
    "series_modality",
    "series_body_part",
)
IMAGE_SET_INDEXES = {
    "ix_image_sets_datastore_id_patient_id": ["datastore_id", "patient_id"],
    "ix_image_sets_datastore_id_accession_number": ["datastore_id", "accession_number"],
    "ix_image_sets_datastore_id_study_id": ["datastore_id", "study_id"],
    "ix_image_sets_datastore_id_study_instance_uid": ["datastore_id", "study_instance_uid"],
    "ix_image_sets_datastore_id_study_datetime_image_set_id": ["datastore_id", "study_datetime", "image_set_id"],
    "ix_image_sets_datastore_id_updated_at_image_set_id": ["datastore_id", "updated_at", "image_set_id"],
    "ix_image_sets_datastore_id_created_at_image_set_id": ["datastore_id", "created_at", "image_set_id"],
}
_DATE = re.compile(r"[0-9]{8}")


def _study_datetime(study_date: str) -> str | None:
    text = study_date.strip()
    if _DATE.fullmatch(text) is None:
        return None
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return f"{text}000000.000000"


def _backfill_study_datetime() -> None:
    image_sets = sa.table(
        "image_sets",
        sa.column("datastore_id", sa.String()),
        sa.column("image_set_id", sa.String()),
        sa.column("study_date", sa.Text()),
        sa.column("study_datetime", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(image_sets.c.datastore_id, image_sets.c.image_set_id, image_sets.c.study_date).where(
            image_sets.c.study_date.is_not(None)
        )
    ).all()
    updates = [
        {"ds": row.datastore_id, "id": row.image_set_id, "value": value}
        for row in rows
        if (value := _study_datetime(row.study_date)) is not None
    ]
    if updates:
        conn.execute(
            sa.update(image_sets)
            .where(image_sets.c.datastore_id == sa.bindparam("ds"), image_sets.c.image_set_id == sa.bindparam("id"))
            .values(study_datetime=sa.bindparam("value")),
            updates,
        )


def upgrade() -> None:
    with op.batch_alter_table("image_sets") as batch:
        for name in SUMMARY_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
        batch.add_column(sa.Column("instance_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("study_datetime", sa.String(21), nullable=True))
    _backfill_study_datetime()
    for name, columns in IMAGE_SET_INDEXES.items():
        op.create_index(name, "image_sets", columns)
    op.create_index(
        "ix_image_set_versions_datastore_id_metadata_key", "image_set_versions", ["datastore_id", "metadata_key"]
    )
    op.create_index("ix_image_set_frames_datastore_id_frame_id", "image_set_frames", ["datastore_id", "frame_id"])


def downgrade() -> None:
    op.drop_index("ix_image_set_frames_datastore_id_frame_id", table_name="image_set_frames")
    op.drop_index("ix_image_set_versions_datastore_id_metadata_key", table_name="image_set_versions")
    for name in reversed(IMAGE_SET_INDEXES):
        op.drop_index(name, table_name="image_sets")
    with op.batch_alter_table("image_sets") as batch:
        batch.drop_column("study_datetime")
        batch.drop_column("instance_count")
        for name in reversed(SUMMARY_COLUMNS):
            batch.drop_column(name)
