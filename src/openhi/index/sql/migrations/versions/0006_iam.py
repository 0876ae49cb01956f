"""IAM principals: users and their access keys, roles, inline and attached policies, STS sessions.

Hand-written and self-contained like 0001-0005; the tables are those of ``schema.py`` (``iam_*``), read and
written by ``openhi.index.sql.iam``. Keys and policies belong to a user or a role and go with it
(ON DELETE CASCADE); sessions name their role without a foreign key (it may be a role of the IAM file). The
tables start empty: principals come from ``openhi iam`` or the server's IAM file.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = 64
POLICY_NAME = 128
KEY_ID = 128
POLICY_ARN = 2048


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def _owner(table: str, column: str, owners: str) -> list[sa.Column[str] | sa.ForeignKeyConstraint]:
    return [
        sa.Column(column, sa.String(NAME), nullable=False),
        sa.ForeignKeyConstraint([column], [f"{owners}.name"], name=f"fk_{table}_{column}_{owners}", ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("arn", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_iam_users"),
    )
    op.create_table(
        "iam_roles",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("arn", sa.Text(), nullable=False),
        sa.Column("trust_policy", sa.Text(), nullable=False),
        sa.Column("max_session_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_iam_roles"),
    )
    op.create_table(
        "iam_access_keys",
        sa.Column("access_key_id", sa.String(KEY_ID), nullable=False),
        sa.Column("secret_access_key", sa.Text(), nullable=False),
        *_owner("iam_access_keys", "user_name", "iam_users"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_iam_access_keys"),
    )
    op.create_index("ix_iam_access_keys_user_name", "iam_access_keys", ["user_name"])
    for kind, owners in (("user", "iam_users"), ("role", "iam_roles")):
        table = f"iam_{kind}_policies"
        op.create_table(
            table,
            *_owner(table, f"{kind}_name", owners),
            sa.Column("policy_name", sa.String(POLICY_NAME), nullable=False),
            sa.Column("document", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint(f"{kind}_name", "policy_name", name=f"pk_{table}"),
        )
        table = f"iam_{kind}_attached_policies"
        op.create_table(
            table,
            *_owner(table, f"{kind}_name", owners),
            sa.Column("policy_arn", sa.String(POLICY_ARN), nullable=False),
            sa.PrimaryKeyConstraint(f"{kind}_name", "policy_arn", name=f"pk_{table}"),
        )
    op.create_table(
        "iam_sessions",
        sa.Column("access_key_id", sa.String(KEY_ID), nullable=False),
        sa.Column("secret_access_key", sa.Text(), nullable=False),
        sa.Column("session_token", sa.Text(), nullable=False),
        sa.Column("role_name", sa.String(NAME), nullable=False),  # no foreign key: may be a role of the IAM file
        sa.Column("session_name", sa.String(NAME), nullable=False),
        sa.Column("source_arn", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("expires_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_iam_sessions"),
    )
    op.create_index("ix_iam_sessions_role_name", "iam_sessions", ["role_name"])
    op.create_index("ix_iam_sessions_expires_at", "iam_sessions", ["expires_at"])


def downgrade() -> None:
    for table in (
        "iam_sessions",
        "iam_role_attached_policies",
        "iam_role_policies",
        "iam_user_attached_policies",
        "iam_user_policies",
        "iam_access_keys",
        "iam_roles",
        "iam_users",
    ):
        op.drop_table(table)
