"""Image sets in full (grouping elements, versions, frames) and DICOM import jobs (files, commits).

Hand-written and self-contained like 0001 (it does not import ``schema.py``). ``image_sets`` is altered in
batch mode, which on SQLite adds columns in place and copies the table only where SQLite cannot alter it
(dropping columns on downgrade).

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUPING_COLUMNS = (
    "study_date",
    "accession_number",
    "patient_id",
    "study_instance_uid",
    "study_id",
    "series_instance_uid",
    "series_number",
)


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _id(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable)


def _cascade(table: str, columns: list[str], target: str, target_columns: list[str]) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        columns,
        [f"{target}.{column}" for column in target_columns],
        name=f"fk_{table}_{columns[0]}_{target}",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("image_sets") as batch:
        batch.add_column(sa.Column("deleted_at", _time(), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        for name in GROUPING_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
    op.create_index(
        "ix_image_sets_datastore_id_series_instance_uid_is_primary",
        "image_sets",
        ["datastore_id", "series_instance_uid", "is_primary"],
    )
    op.create_index("ix_image_sets_datastore_id_state", "image_sets", ["datastore_id", "state"])

    op.create_table(
        "image_set_versions",
        _id("datastore_id"),
        _id("image_set_id"),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("workflow_status", sa.String(32), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("metadata_key", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _id("job_id", nullable=True),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", "version_id", name="pk_image_set_versions"),
        _cascade(
            "image_set_versions",
            ["datastore_id", "image_set_id"],
            "image_sets",
            ["datastore_id", "image_set_id"],
        ),
    )
    op.create_table(
        "image_set_frames",
        _id("datastore_id"),
        _id("image_set_id"),
        _id("frame_id"),
        sa.Column("stored_transfer_syntax", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("datastore_id", "image_set_id", "frame_id", name="pk_image_set_frames"),
        _cascade("image_set_frames", ["datastore_id"], "datastores", ["datastore_id"]),
    )

    op.create_table(
        "import_jobs",
        _id("job_id"),
        _id("datastore_id"),
        sa.Column("job_name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("data_access_role_arn", sa.Text(), nullable=False),
        sa.Column("input_s3_uri", sa.Text(), nullable=False),
        sa.Column("output_s3_uri", sa.Text(), nullable=False),
        sa.Column("input_owner_account_id", sa.Text(), nullable=True),
        sa.Column("import_configuration", sa.Text(), nullable=True),
        sa.Column("client_token", sa.Text(), nullable=False),
        sa.Column("submitted_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", _time(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_import_jobs"),
        sa.UniqueConstraint("datastore_id", "client_token", name="uq_import_jobs_datastore_id_client_token"),
        _cascade("import_jobs", ["datastore_id"], "datastores", ["datastore_id"]),
    )
    op.create_index(
        "ix_import_jobs_datastore_id_submitted_at_job_id",
        "import_jobs",
        ["datastore_id", "submitted_at", "job_id"],
    )
    op.create_index("ix_import_jobs_status", "import_jobs", ["status"])
    op.create_table(
        "import_files",
        _id("job_id"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("input_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_import_files"),
        _cascade("import_files", ["job_id"], "import_jobs", ["job_id"]),
    )
    op.create_index("ix_import_files_job_id_status_group_key", "import_files", ["job_id", "status", "group_key"])
    op.create_table(
        "import_commits",
        _id("job_id"),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("image_set_ids", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "group_key", name="pk_import_commits"),
        _cascade("import_commits", ["job_id"], "import_jobs", ["job_id"]),
    )


def downgrade() -> None:
    op.drop_table("import_commits")
    op.drop_index("ix_import_files_job_id_status_group_key", table_name="import_files")
    op.drop_table("import_files")
    op.drop_index("ix_import_jobs_status", table_name="import_jobs")
    op.drop_index("ix_import_jobs_datastore_id_submitted_at_job_id", table_name="import_jobs")
    op.drop_table("import_jobs")
    op.drop_table("image_set_frames")
    op.drop_table("image_set_versions")
    op.drop_index("ix_image_sets_datastore_id_state", table_name="image_sets")
    op.drop_index("ix_image_sets_datastore_id_series_instance_uid_is_primary", table_name="image_sets")
    with op.batch_alter_table("image_sets") as batch:
        for name in reversed(GROUPING_COLUMNS):
            batch.drop_column(name)
        batch.drop_column("message")
        batch.drop_column("deleted_at")
