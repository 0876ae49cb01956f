"""``IamRepository`` on SQL: the ``iam_*`` tables of migration 0006.

Users and roles are keyed by name; access keys and policies reference them with ON DELETE CASCADE, so deleting a
principal is one statement (two for a role: its sessions name it without a foreign key, since a session may be
of a role of the IAM file). Inserts run in a savepoint so that a duplicate key or a missing principal
becomes a ``ConflictError`` and leaves the unit of work usable (as ``repositories.py`` does). Policies of users
and of roles live in separate tables (a foreign key names one table); ``_policy_tables`` picks them by kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from openhi.errors import ConflictError
from openhi.iam.directory_model import (
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    Role,
    SessionRecord,
    User,
)
from openhi.index.sql.schema import (
    iam_access_keys,
    iam_role_attached_policies,
    iam_role_policies,
    iam_roles,
    iam_sessions,
    iam_user_attached_policies,
    iam_user_policies,
    iam_users,
)


def _policy_tables(kind: PrincipalKind) -> tuple[Table, Table, str]:
    """(inline policies, attached policies, owner column name) of users or of roles."""
    if kind is PrincipalKind.USER:
        return iam_user_policies, iam_user_attached_policies, "user_name"
    return iam_role_policies, iam_role_attached_policies, "role_name"


def _user(row: Row[Any]) -> User:
    return User(name=row.name, arn=row.arn, created_at=row.created_at)


def _key(row: Row[Any]) -> AccessKeyRecord:
    return AccessKeyRecord(
        access_key_id=row.access_key_id,
        secret_access_key=row.secret_access_key,
        user_name=row.user_name,
        status=KeyStatus(row.status),
        created_at=row.created_at,
    )


def _role(row: Row[Any]) -> Role:
    return Role(
        name=row.name,
        arn=row.arn,
        trust_policy=row.trust_policy,
        created_at=row.created_at,
        max_session_seconds=int(row.max_session_seconds),
    )


def _session(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        access_key_id=row.access_key_id,
        secret_access_key=row.secret_access_key,
        session_token=row.session_token,
        role_name=row.role_name,
        session_name=row.session_name,
        source_arn=row.source_arn,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


@dataclass(frozen=True)
class SqlIamRepository:
    """``IamRepository`` on one connection."""

    conn: Connection

    def _insert(self, table: Table, values: Mapping[str, object], conflict: str) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(table).values(values))
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc

    # -- users and their keys -------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        values = {"name": user.name, "arn": user.arn, "created_at": user.created_at}
        self._insert(iam_users, values, f"User {user.name} already exists")

    def get_user(self, name: str) -> User | None:
        row = self.conn.execute(select(iam_users).where(iam_users.c.name == name)).one_or_none()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        return [_user(row) for row in self.conn.execute(select(iam_users).order_by(iam_users.c.name))]

    def delete_user(self, name: str) -> bool:
        return self.conn.execute(delete(iam_users).where(iam_users.c.name == name)).rowcount == 1

    def add_access_key(self, key: AccessKeyRecord) -> None:
        values = {
            "access_key_id": key.access_key_id,
            "secret_access_key": key.secret_access_key,
            "user_name": key.user_name,
            "status": key.status.value,
            "created_at": key.created_at,
        }
        self._insert(iam_access_keys, values, f"Access key {key.access_key_id} exists or user {key.user_name} does not")

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        query = select(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id)
        row = self.conn.execute(query).one_or_none()
        return None if row is None else _key(row)

    def list_access_keys(self, user_name: str) -> list[AccessKeyRecord]:
        query = (
            select(iam_access_keys)
            .where(iam_access_keys.c.user_name == user_name)
            .order_by(iam_access_keys.c.created_at, iam_access_keys.c.access_key_id)
        )
        return [_key(row) for row in self.conn.execute(query)]

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool:
        statement = (
            update(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id).values(status=status.value)
        )
        return self.conn.execute(statement).rowcount == 1

    def delete_access_key(self, access_key_id: str) -> bool:
        statement = delete(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id)
        return self.conn.execute(statement).rowcount == 1

    # -- roles ------------------------------------------------------------------------------------------------

    def add_role(self, role: Role) -> None:
        values = {
            "name": role.name,
            "arn": role.arn,
            "trust_policy": role.trust_policy,
            "max_session_seconds": role.max_session_seconds,
            "created_at": role.created_at,
        }
        self._insert(iam_roles, values, f"Role {role.name} already exists")

    def get_role(self, name: str) -> Role | None:
        row = self.conn.execute(select(iam_roles).where(iam_roles.c.name == name)).one_or_none()
        return None if row is None else _role(row)

    def list_roles(self) -> list[Role]:
        return [_role(row) for row in self.conn.execute(select(iam_roles).order_by(iam_roles.c.name))]

    def delete_role(self, name: str) -> bool:
        self.conn.execute(delete(iam_sessions).where(iam_sessions.c.role_name == name))
        return self.conn.execute(delete(iam_roles).where(iam_roles.c.name == name)).rowcount == 1

    # -- policies ---------------------------------------------------------------------------------------------

    def put_policy(self, policy: InlinePolicy) -> None:
        table, _, owner = _policy_tables(policy.kind)
        row = {owner: policy.principal, "policy_name": policy.name, "document": policy.document}
        # SqlIndex accepts only PostgreSQL and SQLite URLs; both spell the upsert the same way.
        dialect_insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        upsert = dialect_insert(table).values(row)
        statement = upsert.on_conflict_do_update(
            index_elements=[table.c[owner], table.c.policy_name], set_={"document": upsert.excluded.document}
        )
        try:
            with self.conn.begin_nested():
                self.conn.execute(statement)
        except IntegrityError as exc:
            raise ConflictError(f"The {policy.kind.value} {policy.principal} does not exist") from exc

    def delete_policy(self, kind: PrincipalKind, principal: str, name: str) -> bool:
        table, _, owner = _policy_tables(kind)
        statement = delete(table).where(table.c[owner] == principal, table.c.policy_name == name)
        return self.conn.execute(statement).rowcount == 1

    def list_policies(self, kind: PrincipalKind, principal: str) -> list[InlinePolicy]:
        table, _, owner = _policy_tables(kind)
        query = select(table).where(table.c[owner] == principal).order_by(table.c.policy_name)
        return [InlinePolicy(kind, principal, row.policy_name, row.document) for row in self.conn.execute(query)]

    def attach_policy(self, attached: AttachedPolicy) -> None:
        _, table, owner = _policy_tables(attached.kind)
        owner_column: Column[Any] = table.c[owner]
        exists = select(table.c.policy_arn).where(
            owner_column == attached.principal, table.c.policy_arn == attached.policy_arn
        )
        if self.conn.execute(exists).first() is not None:
            return
        values = {owner: attached.principal, "policy_arn": attached.policy_arn}
        self._insert(table, values, f"The {attached.kind.value} {attached.principal} does not exist")

    def detach_policy(self, kind: PrincipalKind, principal: str, policy_arn: str) -> bool:
        _, table, owner = _policy_tables(kind)
        statement = delete(table).where(table.c[owner] == principal, table.c.policy_arn == policy_arn)
        return self.conn.execute(statement).rowcount == 1

    def list_attached(self, kind: PrincipalKind, principal: str) -> list[AttachedPolicy]:
        _, table, owner = _policy_tables(kind)
        query = select(table.c.policy_arn).where(table.c[owner] == principal).order_by(table.c.policy_arn)
        return [AttachedPolicy(kind, principal, str(arn)) for arn in self.conn.execute(query).scalars()]

    # -- STS sessions -----------------------------------------------------------------------------------------

    def add_session(self, session: SessionRecord) -> None:
        values = {
            "access_key_id": session.access_key_id,
            "secret_access_key": session.secret_access_key,
            "session_token": session.session_token,
            "role_name": session.role_name,
            "session_name": session.session_name,
            "source_arn": session.source_arn,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
        }
        self._insert(iam_sessions, values, f"Access key {session.access_key_id} already exists")

    def get_session(self, access_key_id: str) -> SessionRecord | None:
        query = select(iam_sessions).where(iam_sessions.c.access_key_id == access_key_id)
        row = self.conn.execute(query).one_or_none()
        return None if row is None else _session(row)

    def delete_sessions_expired_before(self, cutoff: datetime) -> int:
        statement = delete(iam_sessions).where(iam_sessions.c.expires_at < cutoff)
        return int(self.conn.execute(statement).rowcount)
