"""The admin side of the principal directory: users, access keys, roles and their policies.

What ``openhi iam ...`` drives (``cli/iam.py``); ``access.directory.PrincipalDirectory`` extends it with key
resolution and STS. Principals come from two sources: the index (``IamRepository``), which these methods write, and
the read-only IAM file (``access.iam_file``), whose principals they show but refuse to change (``ConflictError``);
creating an index principal with a file principal's name is refused the same way. Policies are checked with IAM's
grammar before they are stored (``iam.policy``: ``PolicyError``, a ``ValidationError``); attachable policies are the
AWS managed policies of ``iam.managed`` (guide 21914-21960). Deleting a user removes its keys and policies, deleting
a role its policies and sessions (IAM refuses both until they are gone; OpenHI's admin CLI does it in one step).
A user has at most two access keys, as IAM's ``AccessKeysPerUser`` quota.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from openhi.clock import Clock
from openhi.errors import ConflictError, NotFoundError
from openhi.iam.directory_model import (
    DEFAULT_MAX_SESSION_SECONDS,
    MAX_ACCESS_KEYS_PER_USER,
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    PrincipalSet,
    Role,
    User,
    check_max_session_seconds,
    check_name,
    check_policy_name,
    new_access_key_id,
    new_secret_access_key,
)
from openhi.iam.managed import managed_policy, managed_policy_arn
from openhi.iam.policy import parse_identity_policy, parse_trust_policy
from openhi.iam.principals import role_arn, user_arn
from openhi.index.port import Index, UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True)
class UserView:
    """A user with its access keys, inline policies and attached managed policy ARNs; ``read_only`` for the file's."""

    user: User
    access_keys: tuple[AccessKeyRecord, ...]
    policies: tuple[InlinePolicy, ...]
    attached: tuple[str, ...]
    read_only: bool


@dataclass(frozen=True)
class RoleView:
    """A role with its inline policies and attached managed policy ARNs; ``read_only`` for the file's."""

    role: Role
    policies: tuple[InlinePolicy, ...]
    attached: tuple[str, ...]
    read_only: bool


class DirectoryAdmin:
    """Create, change, list and delete principals (see the module docstring)."""

    def __init__(
        self, index: Index, account_id: str, clock: Clock, file_principals: PrincipalSet | None = None
    ) -> None:
        self._index = index
        self._account = account_id
        self._clock = clock
        self._file = file_principals or PrincipalSet()
        self._file_users = {user.name: user for user in self._file.users}
        self._file_roles = {role.name: role for role in self._file.roles}
        self._file_keys = {key.access_key_id: key for key in self._file.access_keys}

    @property
    def account_id(self) -> str:
        """The account every principal belongs to."""
        return self._account

    def from_file(self, kind: PrincipalKind, name: str) -> bool:
        """True when the user or role is one of the IAM file's (read-only)."""
        return name in (self._file_users if kind is PrincipalKind.USER else self._file_roles)

    # -- users -------------------------------------------------------------------------------------------------

    def _writable_user(self, name: str) -> str:
        if name in self._file_users:
            raise ConflictError(f"User {name} is defined in the IAM file (read-only); change it there")
        return name

    def _writable_role(self, name: str) -> str:
        if name in self._file_roles:
            raise ConflictError(f"Role {name} is defined in the IAM file (read-only); change it there")
        return name

    def _write(self, work: Callable[[UnitOfWork], T]) -> T:
        try:
            return self._index.run(work)
        finally:
            self._changed()

    def _changed(self) -> None:
        """Called after every admin write (the directory clears its caches)."""

    @staticmethod
    def _require_user(uow: UnitOfWork, name: str) -> User:
        user = uow.iam.get_user(name)
        if user is None:
            raise NotFoundError(f"The user with name {name} cannot be found.")
        return user

    @staticmethod
    def _require_role(uow: UnitOfWork, name: str) -> Role:
        role = uow.iam.get_role(name)
        if role is None:
            raise NotFoundError(f"The role with name {name} cannot be found.")
        return role

    def create_user(self, name: str) -> User:
        """A new IAM user without keys or policies."""
        user = User(self._writable_user(check_name(name, "userName")), user_arn(self._account, name), self._clock())
        self._write(lambda uow: uow.iam.add_user(user))
        return user

    def delete_user(self, name: str) -> None:
        """Remove the user, its access keys and its policies."""
        self._writable_user(name)
        if not self._write(lambda uow: uow.iam.delete_user(name)):
            raise NotFoundError(f"The user with name {name} cannot be found.")

    def list_users(self) -> list[User]:
        """The file's users and the index's, by name."""
        stored = self._index.run(lambda uow: uow.iam.list_users(), readonly=True)
        return sorted([*self._file.users, *stored], key=lambda user: user.name)

    def get_user(self, name: str) -> UserView:
        """The user with its keys and policies."""
        if name in self._file_users:
            return UserView(
                self._file_users[name],
                tuple(key for key in self._file.access_keys if key.user_name == name),
                self._file_policies(PrincipalKind.USER, name),
                self._file_attached(PrincipalKind.USER, name),
                read_only=True,
            )

        def work(uow: UnitOfWork) -> UserView:
            user = self._require_user(uow, name)
            return UserView(
                user,
                tuple(uow.iam.list_access_keys(name)),
                tuple(uow.iam.list_policies(PrincipalKind.USER, name)),
                tuple(a.policy_arn for a in uow.iam.list_attached(PrincipalKind.USER, name)),
                read_only=False,
            )

        return self._index.run(work, readonly=True)

    # -- access keys -------------------------------------------------------------------------------------------

    def create_access_key(self, user_name: str) -> AccessKeyRecord:
        """A new Active key pair for the user (at most two keys per user, as IAM)."""
        self._writable_user(user_name)
        key = AccessKeyRecord(new_access_key_id(), new_secret_access_key(), user_name, KeyStatus.ACTIVE, self._clock())

        def work(uow: UnitOfWork) -> None:
            self._require_user(uow, user_name)
            if len(uow.iam.list_access_keys(user_name)) >= MAX_ACCESS_KEYS_PER_USER:
                raise ConflictError(
                    f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER} (user {user_name})"
                )
            uow.iam.add_access_key(key)

        self._write(work)
        return key

    def list_access_keys(self, user_name: str) -> list[AccessKeyRecord]:
        """The user's keys, oldest first (secrets included: callers decide what to show)."""
        return list(self.get_user(user_name).access_keys)

    def _own_key(self, uow: UnitOfWork, user_name: str, access_key_id: str) -> None:
        self._require_user(uow, user_name)
        key = uow.iam.get_access_key(access_key_id)
        if key is None or key.user_name != user_name:
            raise NotFoundError(f"The Access Key with id {access_key_id} cannot be found.")

    def update_access_key(self, user_name: str, access_key_id: str, status: KeyStatus) -> None:
        """Make a key Active or Inactive (an Inactive key signs nothing)."""
        self._writable_user(user_name)

        def work(uow: UnitOfWork) -> None:
            self._own_key(uow, user_name, access_key_id)
            uow.iam.set_access_key_status(access_key_id, status)

        self._write(work)

    def delete_access_key(self, user_name: str, access_key_id: str) -> None:
        """Remove one of the user's keys."""
        self._writable_user(user_name)

        def work(uow: UnitOfWork) -> None:
            self._own_key(uow, user_name, access_key_id)
            uow.iam.delete_access_key(access_key_id)

        self._write(work)

    # -- roles -------------------------------------------------------------------------------------------------

    def create_role(self, name: str, trust_policy: str, max_session_seconds: int = DEFAULT_MAX_SESSION_SECONDS) -> Role:
        """A new role; ``trust_policy`` must be a valid trust policy (JSON text)."""
        self._writable_role(check_name(name, "roleName"))
        parse_trust_policy(trust_policy)
        role = Role(
            name,
            role_arn(self._account, name),
            trust_policy,
            self._clock(),
            check_max_session_seconds(max_session_seconds),
        )
        self._write(lambda uow: uow.iam.add_role(role))
        return role

    def delete_role(self, name: str) -> None:
        """Remove the role, its policies and its sessions (their keys stop working)."""
        self._writable_role(name)
        if not self._write(lambda uow: uow.iam.delete_role(name)):
            raise NotFoundError(f"The role with name {name} cannot be found.")

    def list_roles(self) -> list[Role]:
        """The file's roles and the index's, by name."""
        stored = self._index.run(lambda uow: uow.iam.list_roles(), readonly=True)
        return sorted([*self._file.roles, *stored], key=lambda role: role.name)

    def get_role(self, name: str) -> RoleView:
        """The role with its policies."""
        if name in self._file_roles:
            return RoleView(
                self._file_roles[name],
                self._file_policies(PrincipalKind.ROLE, name),
                self._file_attached(PrincipalKind.ROLE, name),
                read_only=True,
            )

        def work(uow: UnitOfWork) -> RoleView:
            role = self._require_role(uow, name)
            return RoleView(
                role,
                tuple(uow.iam.list_policies(PrincipalKind.ROLE, name)),
                tuple(a.policy_arn for a in uow.iam.list_attached(PrincipalKind.ROLE, name)),
                read_only=False,
            )

        return self._index.run(work, readonly=True)

    # -- policies ----------------------------------------------------------------------------------------------

    def _writable(self, kind: PrincipalKind, name: str) -> None:
        if kind is PrincipalKind.USER:
            self._writable_user(name)
        else:
            self._writable_role(name)

    def _require(self, uow: UnitOfWork, kind: PrincipalKind, name: str) -> None:
        if kind is PrincipalKind.USER:
            self._require_user(uow, name)
        else:
            self._require_role(uow, name)

    def _put_policy(self, kind: PrincipalKind, principal: str, name: str, document: str) -> None:
        self._writable(kind, principal)
        parse_identity_policy(document)
        policy = InlinePolicy(kind, principal, check_policy_name(name), document)

        def work(uow: UnitOfWork) -> None:
            self._require(uow, kind, principal)
            uow.iam.put_policy(policy)

        self._write(work)

    def _delete_policy(self, kind: PrincipalKind, principal: str, name: str) -> None:
        self._writable(kind, principal)

        def work(uow: UnitOfWork) -> None:
            self._require(uow, kind, principal)
            if not uow.iam.delete_policy(kind, principal, name):
                raise NotFoundError(f"The {kind.value} policy with name {name} cannot be found.")

        self._write(work)

    @staticmethod
    def _managed_arn(policy: str) -> str:
        if managed_policy(policy) is None:
            raise NotFoundError(f"Policy {policy} does not exist or is not attachable.")
        return managed_policy_arn(policy.rsplit("/", 1)[-1])

    def _attach(self, kind: PrincipalKind, principal: str, policy: str) -> None:
        self._writable(kind, principal)
        attached = AttachedPolicy(kind, principal, self._managed_arn(policy))

        def work(uow: UnitOfWork) -> None:
            self._require(uow, kind, principal)
            uow.iam.attach_policy(attached)

        self._write(work)

    def _detach(self, kind: PrincipalKind, principal: str, policy: str) -> None:
        self._writable(kind, principal)
        arn = self._managed_arn(policy)

        def work(uow: UnitOfWork) -> None:
            self._require(uow, kind, principal)
            if not uow.iam.detach_policy(kind, principal, arn):
                raise NotFoundError(f"Policy {arn} was not found (it is not attached to {kind.value} {principal}).")

        self._write(work)

    def put_user_policy(self, user_name: str, policy_name: str, document: str) -> None:
        """Add or replace an inline identity policy of the user (``PolicyError`` when invalid)."""
        self._put_policy(PrincipalKind.USER, user_name, policy_name, document)

    def delete_user_policy(self, user_name: str, policy_name: str) -> None:
        """Remove an inline policy of the user."""
        self._delete_policy(PrincipalKind.USER, user_name, policy_name)

    def attach_user_policy(self, user_name: str, policy: str) -> None:
        """Attach an AWS managed policy, by name or ARN, to the user."""
        self._attach(PrincipalKind.USER, user_name, policy)

    def detach_user_policy(self, user_name: str, policy: str) -> None:
        """Detach a managed policy from the user."""
        self._detach(PrincipalKind.USER, user_name, policy)

    def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        """Add or replace an inline identity policy of the role."""
        self._put_policy(PrincipalKind.ROLE, role_name, policy_name, document)

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        """Remove an inline policy of the role."""
        self._delete_policy(PrincipalKind.ROLE, role_name, policy_name)

    def attach_role_policy(self, role_name: str, policy: str) -> None:
        """Attach an AWS managed policy, by name or ARN, to the role."""
        self._attach(PrincipalKind.ROLE, role_name, policy)

    def detach_role_policy(self, role_name: str, policy: str) -> None:
        """Detach a managed policy from the role."""
        self._detach(PrincipalKind.ROLE, role_name, policy)

    # -- the file's principals ---------------------------------------------------------------------------------

    def _file_policies(self, kind: PrincipalKind, name: str) -> tuple[InlinePolicy, ...]:
        return tuple(p for p in self._file.policies if p.kind is kind and p.principal == name)

    def _file_attached(self, kind: PrincipalKind, name: str) -> tuple[str, ...]:
        return tuple(a.policy_arn for a in self._file.attached if a.kind is kind and a.principal == name)
