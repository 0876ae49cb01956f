"""``IamRepository`` in memory: users, access keys, roles, their policies and STS sessions.

Mirrors the SQL tables of migration 0006: a key or a policy must belong to a principal that exists (foreign keys),
keys are unique, and deleting a user or a role takes its rows with it (ON DELETE CASCADE; a role's sessions too,
although a session may name a role the index does not hold: one of the IAM file).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

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
from openhi.index.memory_state import MemoryState, utc


@dataclass(frozen=True)
class MemoryIamRepository:
    """``IamRepository`` over the state."""

    state: MemoryState

    # -- users and their keys -------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        if user.name in self.state.iam_users:
            raise ConflictError(f"User {user.name} already exists")
        self.state.iam_users[user.name] = replace(user, created_at=utc(user.created_at))

    def get_user(self, name: str) -> User | None:
        return self.state.iam_users.get(name)

    def list_users(self) -> list[User]:
        return [self.state.iam_users[name] for name in sorted(self.state.iam_users)]

    def delete_user(self, name: str) -> bool:
        if self.state.iam_users.pop(name, None) is None:
            return False
        for key in [k for k, record in self.state.iam_access_keys.items() if record.user_name == name]:
            del self.state.iam_access_keys[key]
        self._forget_policies(PrincipalKind.USER, name)
        return True

    def add_access_key(self, key: AccessKeyRecord) -> None:
        if key.user_name not in self.state.iam_users:
            raise ConflictError(f"User {key.user_name} does not exist")
        if key.access_key_id in self.state.iam_access_keys:
            raise ConflictError(f"Access key {key.access_key_id} already exists")
        self.state.iam_access_keys[key.access_key_id] = replace(key, created_at=utc(key.created_at))

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        return self.state.iam_access_keys.get(access_key_id)

    def list_access_keys(self, user_name: str) -> list[AccessKeyRecord]:
        keys = [key for key in self.state.iam_access_keys.values() if key.user_name == user_name]
        return sorted(keys, key=lambda key: (key.created_at, key.access_key_id))

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool:
        current = self.state.iam_access_keys.get(access_key_id)
        if current is None:
            return False
        self.state.iam_access_keys[access_key_id] = replace(current, status=status)
        return True

    def delete_access_key(self, access_key_id: str) -> bool:
        return self.state.iam_access_keys.pop(access_key_id, None) is not None

    # -- roles ------------------------------------------------------------------------------------------------

    def add_role(self, role: Role) -> None:
        if role.name in self.state.iam_roles:
            raise ConflictError(f"Role {role.name} already exists")
        self.state.iam_roles[role.name] = replace(role, created_at=utc(role.created_at))

    def get_role(self, name: str) -> Role | None:
        return self.state.iam_roles.get(name)

    def list_roles(self) -> list[Role]:
        return [self.state.iam_roles[name] for name in sorted(self.state.iam_roles)]

    def delete_role(self, name: str) -> bool:
        if self.state.iam_roles.pop(name, None) is None:
            return False
        for key in [k for k, session in self.state.iam_sessions.items() if session.role_name == name]:
            del self.state.iam_sessions[key]
        self._forget_policies(PrincipalKind.ROLE, name)
        return True

    # -- policies ---------------------------------------------------------------------------------------------

    def _require_principal(self, kind: PrincipalKind, principal: str) -> None:
        table: dict[str, User] | dict[str, Role] = (
            self.state.iam_users if kind is PrincipalKind.USER else self.state.iam_roles
        )
        if principal not in table:
            raise ConflictError(f"The {kind.value} {principal} does not exist")

    def _forget_policies(self, kind: PrincipalKind, principal: str) -> None:
        for table in (self.state.iam_policies, self.state.iam_attached):
            for key in [k for k in table if k[0] is kind and k[1] == principal]:
                del table[key]

    def put_policy(self, policy: InlinePolicy) -> None:
        self._require_principal(policy.kind, policy.principal)
        self.state.iam_policies[(policy.kind, policy.principal, policy.name)] = policy

    def delete_policy(self, kind: PrincipalKind, principal: str, name: str) -> bool:
        return self.state.iam_policies.pop((kind, principal, name), None) is not None

    def list_policies(self, kind: PrincipalKind, principal: str) -> list[InlinePolicy]:
        found = [p for (k, owner, _), p in self.state.iam_policies.items() if k is kind and owner == principal]
        return sorted(found, key=lambda policy: policy.name)

    def attach_policy(self, attached: AttachedPolicy) -> None:
        self._require_principal(attached.kind, attached.principal)
        self.state.iam_attached[(attached.kind, attached.principal, attached.policy_arn)] = attached

    def detach_policy(self, kind: PrincipalKind, principal: str, policy_arn: str) -> bool:
        return self.state.iam_attached.pop((kind, principal, policy_arn), None) is not None

    def list_attached(self, kind: PrincipalKind, principal: str) -> list[AttachedPolicy]:
        found = [a for (k, owner, _), a in self.state.iam_attached.items() if k is kind and owner == principal]
        return sorted(found, key=lambda attached: attached.policy_arn)

    # -- STS sessions -----------------------------------------------------------------------------------------

    def add_session(self, session: SessionRecord) -> None:
        if session.access_key_id in self.state.iam_sessions:
            raise ConflictError(f"Access key {session.access_key_id} already exists")
        self.state.iam_sessions[session.access_key_id] = replace(
            session, created_at=utc(session.created_at), expires_at=utc(session.expires_at)
        )

    def get_session(self, access_key_id: str) -> SessionRecord | None:
        return self.state.iam_sessions.get(access_key_id)

    def delete_sessions_expired_before(self, cutoff: datetime) -> int:
        expired = [key for key, session in self.state.iam_sessions.items() if session.expires_at < utc(cutoff)]
        for key in expired:
            del self.state.iam_sessions[key]
        return len(expired)
